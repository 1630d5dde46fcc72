//! Metering on DynamoDB: the hot path of every relay request, at two calls.
//!
//! An admitted request costs two calls and no transaction. A scoped key's: one
//! conditional `UpdateItem` of its index entry (it exists, is a scoped key, enabled, not
//! expired, bound to the request's client and user, under its own caps) and one of the
//! account (the key's generation is the account's, the account's caps have room). A
//! master key's: one consistent `GetItem` of its index entry (which names the account)
//! and the account's `UpdateItem` (the key is still the account's master key, and, while
//! `REQUIRE_EMAIL_VERIFICATION` is on, the account is not marked unverified). The
//! account's counters live in its meter item (`METER#<id>`, `records::MeterItem`), not in
//! the account, so that every item written here stays under 1 KB (one write unit). Each write
//! returns the item as it wrote it (`ALL_NEW`), so nothing is read before counting; a
//! failed condition returns the item as it was (`ALL_OLD`), from which
//! [`crate::domain::meter`] names the reason. A malformed key never gets here.
//!
//! Counters are named by their UTC period (`day:2026-12-02`, `month:2026-12`), so a new
//! day starts from zero with no read; each write also removes yesterday's and last
//! month's. Counters of older periods stay behind only after an idle gap; when a write
//! returns more than [`LEFTOVERS_KEPT`] of them, one more write removes them, so that the
//! items stay small (a third call, once in several idle gaps of one key).

use super::{
    conditional, from_item, n, no_retries, pk, retry_conflicts, s, sdk_error, time, to_item, DynamoStore, Item, Written,
};
use crate::domain::clock::iso;
use crate::domain::error::{Chain, PortError};
use crate::domain::keys::KeyKind;
use crate::domain::meter::{account_refusal, entry_refusal, verdict, AccountMeter, Meter, Metered, Refusal};
use crate::domain::model::{day_period, month_period, previous_periods, KeyEntry, User};
use crate::domain::ports::{KeyIndex, Metering, PortResult};
use crate::domain::scopes::Need;
use crate::records::{key_pk, meter_pk, user_pk, KeyItem, MeterItem, UserItem, EMAIL_VERIFIED};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// How many counters of past periods an item may keep before a write removes them.
pub const LEFTOVERS_KEPT: usize = 2;

/// The period names one request works with.
struct Periods {
    day: String,
    month: String,
    yesterday: String,
    last_month: String,
}

impl Periods {
    fn of(meter: &Meter<'_>) -> Self {
        let (yesterday, last_month) = previous_periods(meter.now);
        Self { day: day_period(meter.now), month: month_period(meter.now), yesterday, last_month }
    }
}

/// One counting `UpdateItem` being put together: names and values by placeholder, the
/// conditions that must all hold.
struct CountingWrite {
    names: HashMap<String, String>,
    values: Item,
    conditions: Vec<String>,
    sets: Vec<String>,
}

impl CountingWrite {
    /// Adds `cost` to the day's and the month's counter and drops yesterday's and last
    /// month's, on an item that must exist.
    fn new(periods: &Periods, cost: u64) -> Self {
        let names = HashMap::from([
            ("#usage".to_owned(), "usage".to_owned()),
            ("#day".to_owned(), periods.day.clone()),
            ("#month".to_owned(), periods.month.clone()),
            ("#yesterday".to_owned(), periods.yesterday.clone()),
            ("#lastMonth".to_owned(), periods.last_month.clone()),
        ]);
        let values = HashMap::from([(":zero".to_owned(), n(0)), (":cost".to_owned(), n(cost))]);
        let sets = vec![
            "#usage.#day = if_not_exists(#usage.#day, :zero) + :cost".to_owned(),
            "#usage.#month = if_not_exists(#usage.#month, :zero) + :cost".to_owned(),
        ];
        Self { names, values, conditions: vec!["attribute_exists(pk)".to_owned()], sets }
    }

    /// `#name = :value` (names are placeholders: `kind`, `enabled`, `user` ... include
    /// DynamoDB reserved words).
    fn equals(&mut self, attribute: &str, value: AttributeValue) {
        self.names.insert(format!("#{attribute}"), attribute.to_owned());
        self.values.insert(format!(":{attribute}"), value);
        self.conditions.push(format!("#{attribute} = :{attribute}"));
    }

    fn name(&mut self, attribute: &str) {
        self.names.insert(format!("#{attribute}"), attribute.to_owned());
    }

    /// The key serves the client the request names (see `meter::serves_client`): one of its
    /// list when it has one, else its one client, if any.
    fn serves_client(&mut self, asked: Option<&str>) {
        let Some(asked) = asked else {
            return;
        };
        self.name("scopedClientIds");
        self.name("scopedClientId");
        self.values.insert(":client".into(), s(asked));
        self.conditions.push(
            "((attribute_exists(#scopedClientIds) AND contains(#scopedClientIds, :client)) OR \
             (attribute_not_exists(#scopedClientIds) AND (attribute_not_exists(#scopedClientId) OR #scopedClientId = :client)))"
                .into(),
        );
    }

    /// The key may act as the user the request names (see `meter::serves_user`): its user
    /// for the named client when it maps one, else its one user, if any.
    fn serves_user(&mut self, client: Option<&str>, asked: Option<&str>) {
        let Some(asked) = asked else {
            return;
        };
        self.name("scopedUserId");
        self.values.insert(":user".into(), s(asked));
        let single = "(attribute_not_exists(#scopedUserId) OR #scopedUserId = :user)";
        let Some(client) = client else {
            self.conditions.push(single.into());
            return;
        };
        self.name("scopedUserIds");
        self.names.insert("#forClient".into(), client.to_owned());
        self.conditions.push(format!(
            "((attribute_exists(#scopedUserIds.#forClient) AND #scopedUserIds.#forClient = :user) OR \
             (attribute_not_exists(#scopedUserIds.#forClient) AND {single}))"
        ));
    }

    /// The key's grant allows what the request needs (see `scopes::Grant::allows`): a key
    /// with no list is unrestricted.
    fn holds(&mut self, need: Need) {
        match need {
            Need::Nothing => {}
            Need::Scope(scope) => {
                self.name("scopes");
                self.values.insert(":scope".into(), s(scope.code().to_string()));
                self.conditions.push("(attribute_not_exists(#scopes) OR contains(#scopes, :scope))".into());
            }
            Need::Unmapped => {
                self.name("scopes");
                self.conditions.push("attribute_not_exists(#scopes)".into());
            }
        }
    }

    /// The counter of `period` (`#day`, `#month`) leaves room for `cost` under `cap`.
    fn room(&mut self, period: &str, cap: u64, cost: u64) -> String {
        match cap.checked_sub(cost) {
            Some(most) => {
                let value = format!(":most{}", &period[1..]);
                self.values.insert(value.clone(), n(most));
                format!("(attribute_not_exists(#usage.{period}) OR #usage.{period} <= {value})")
            }
            // No room for that cost, ever: a condition that never holds on an item that exists.
            None => "attribute_not_exists(pk)".to_owned(),
        }
    }

    /// The counter of `period` is under the cap the item itself holds in `attribute`
    /// (room for one; a larger cost is checked on what the write returns).
    fn under_own_cap(&mut self, period: &str, attribute: &str) {
        self.names.insert(format!("#{attribute}"), attribute.to_owned());
        self.conditions.push(format!(
            "(attribute_not_exists(#{attribute}) OR attribute_not_exists(#usage.{period}) OR #usage.{period} < #{attribute})"
        ));
    }

    fn expression(&self) -> String {
        format!("SET {} REMOVE #usage.#yesterday, #usage.#lastMonth", self.sets.join(", "))
    }
}

/// What counting on a key's index entry gave.
enum KeyCount {
    Counted(KeyEntry),
    /// A relay key (no kind in its text) whose entry is a master key's: nothing counted.
    Master(KeyEntry),
    Refused(Refusal),
}

impl DynamoStore {
    /// Sends one counting write, once: counting is not idempotent, so neither the SDK nor
    /// this code resends it after an ambiguous failure (which may have counted; the
    /// request is refused, failing closed). Answers that say nothing was applied
    /// (in-flight transaction, throttling) are tried again.
    async fn count(&self, key: Item, write: CountingWrite) -> PortResult<Written<Item>> {
        let request = self
            .client
            .update_item()
            .set_table_name(self.tables.users.clone())
            .set_key(Some(key))
            .update_expression(write.expression())
            .condition_expression(write.conditions.join(" AND "))
            .set_expression_attribute_names(Some(write.names))
            .set_expression_attribute_values(Some(write.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let once = || request.clone().customize().config_override(no_retries()).send();
        Ok(match conditional(once).await? {
            Written::Done(out) => Written::Done(out.attributes.unwrap_or_default()),
            Written::Refused(old) => Written::Refused(old),
        })
    }

    /// Counts on a scoped key's index entry (or finds that a relay key is a master key).
    async fn count_on_key(&self, meter: &Meter<'_>, periods: &Periods) -> PortResult<KeyCount> {
        let mut write = CountingWrite::new(periods, meter.cost);
        write.equals("kind", s("scoped"));
        write.equals("enabled", AttributeValue::Bool(true));
        write.names.insert("#expiresAt".into(), "expiresAt".into());
        write.values.insert(":now".into(), s(iso(meter.now)));
        // Whole-second timestamps compare as text; see `meter::is_expired`.
        write.conditions.push("(attribute_not_exists(#expiresAt) OR #expiresAt > :now)".into());
        write.serves_client(meter.client_id);
        write.serves_user(meter.client_id, meter.user_id);
        write.holds(meter.need);
        write.under_own_cap("#month", "monthlyLimit");
        write.under_own_cap("#day", "dailyLimit");
        match self.count(pk(key_pk(meter.digest)), write).await? {
            Written::Done(item) => {
                let entry = from_item::<KeyItem>(item)?.into_entry(meter.digest);
                self.tidy(pk(key_pk(meter.digest)), &entry.usage.counts, periods).await;
                // A cost above one was admitted for room for one: check all of it.
                match entry_refusal(&entry, meter, meter.cost) {
                    None => Ok(KeyCount::Counted(entry)),
                    Some(refusal) => {
                        self.take_back(meter, periods).await;
                        Ok(KeyCount::Refused(refusal))
                    }
                }
            }
            Written::Refused(None) => Ok(KeyCount::Refused(Refusal::UNKNOWN)),
            Written::Refused(Some(old)) => {
                let entry = from_item::<KeyItem>(old)?.into_entry(meter.digest);
                if entry.kind == KeyKind::Master && meter.kind.is_none() {
                    return Ok(match entry_refusal(&entry, meter, 0) {
                        None => KeyCount::Master(entry),
                        Some(refusal) => KeyCount::Refused(refusal),
                    });
                }
                entry_refusal(&entry, meter, 0).map(KeyCount::Refused).ok_or_else(disagreement)
            }
        }
    }

    /// Counts on the account's meter, while `entry` is still its key and its caps have
    /// room. An account older than meters gets its meter first (once).
    async fn count_on_account(
        &self,
        meter: &Meter<'_>,
        periods: &Periods,
        entry: &KeyEntry,
    ) -> PortResult<Result<AccountMeter, Refusal>> {
        match self.count_on_meter(meter, periods, entry).await? {
            Err(None) if self.make_meter(&entry.user_id).await? => {
                Ok(self.count_on_meter(meter, periods, entry).await?.map_err(|r| r.unwrap_or(Refusal::UNKNOWN)))
            }
            other => Ok(other.map_err(|r| r.unwrap_or(Refusal::UNKNOWN))),
        }
    }

    /// Writes the meter of an account that has none from the account itself; `false` when
    /// there is no such account. (Another request may have written it first: that one stays.)
    async fn make_meter(&self, user_id: &str) -> PortResult<bool> {
        let Some(item) = self.get(self.users_table()?, pk(user_pk(user_id))).await? else {
            return Ok(false);
        };
        let user = User::from(from_item::<UserItem>(item)?);
        let put = self
            .client
            .put_item()
            .table_name(self.users_table()?)
            .set_item(Some(to_item(&MeterItem::from(&user))?))
            .condition_expression("attribute_not_exists(pk)");
        match retry_conflicts(|| put.clone().send()).await {
            Ok(_) => Ok(true),
            Err(err) if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Ok(true)
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// One counting write of the meter; `Err(None)` when there is no meter.
    async fn count_on_meter(
        &self,
        meter: &Meter<'_>,
        periods: &Periods,
        entry: &KeyEntry,
    ) -> PortResult<Result<AccountMeter, Option<Refusal>>> {
        let mut write = CountingWrite::new(periods, meter.cost);
        match entry.kind {
            KeyKind::Master => write.equals("masterKeyDigest", s(&entry.digest.0)),
            KeyKind::Scoped => write.equals("keyGeneration", n(entry.generation)),
        }
        let day = write.room("#day", meter.daily_limit, meter.cost);
        let month = write.room("#month", meter.monthly_limit, meter.cost);
        write.names.insert("#subscription".into(), "subscriptionStatus".into());
        write.values.insert(":active".into(), s("active"));
        write.conditions.push(day);
        write.conditions.push(format!("(#subscription = :active OR {month})"));
        if meter.require_verified {
            // Absent is verified (`records::EMAIL_VERIFIED`): only an unverified meter has it.
            write.names.insert("#verified".into(), EMAIL_VERIFIED.into());
            write.values.insert(":unverified".into(), AttributeValue::Bool(false));
            write.conditions.push("(attribute_not_exists(#verified) OR #verified <> :unverified)".into());
        }
        write.values.insert(":now".into(), time(meter.now));
        write.sets.push("lastRequestAt = :now".into());
        let key = pk(meter_pk(&entry.user_id));
        match self.count(key.clone(), write).await? {
            Written::Done(item) => {
                let account = from_item::<MeterItem>(item)?.into_meter(&entry.user_id);
                self.tidy(key, &account.usage.counts, periods).await;
                Ok(Ok(account))
            }
            Written::Refused(None) => Ok(Err(None)),
            Written::Refused(Some(old)) => {
                let account = from_item::<MeterItem>(old)?.into_meter(&entry.user_id);
                account_refusal(&account, entry, meter, 0).map(|r| Err(Some(r))).ok_or_else(disagreement)
            }
        }
    }

    /// Takes back what [`Self::count_on_key`] counted, when the request was refused after
    /// all. Sent once, as counting is: a lost answer leaves the key one request too many
    /// (logged), never one too few.
    async fn take_back(&self, meter: &Meter<'_>, periods: &Periods) {
        let undo = self
            .client
            .update_item()
            // Best effort, after the count it takes back was written: the table is there.
            .set_table_name(self.tables.users.clone())
            .set_key(Some(pk(key_pk(meter.digest))))
            .update_expression("SET #usage.#month = #usage.#month - :cost, #usage.#day = #usage.#day - :cost")
            .condition_expression("attribute_exists(pk) AND #usage.#month >= :cost AND #usage.#day >= :cost")
            .expression_attribute_names("#usage", "usage")
            .expression_attribute_names("#month", &periods.month)
            .expression_attribute_names("#day", &periods.day)
            .expression_attribute_values(":cost", n(meter.cost));
        let once = || undo.clone().customize().config_override(no_retries()).send();
        if let Err(error) = conditional(once).await {
            tracing::warn!(error = %Chain(&error), "taking back a scoped key's count failed; it counts too many");
        }
    }

    /// Removes the counters of older periods an idle gap left on an item, once there are
    /// more than [`LEFTOVERS_KEPT`] (best effort: they are never read as current ones).
    async fn tidy(&self, key: Item, counts: &std::collections::BTreeMap<String, u64>, periods: &Periods) {
        let leftovers: Vec<&String> = counts.keys().filter(|p| **p != periods.day && **p != periods.month).collect();
        if leftovers.len() <= LEFTOVERS_KEPT {
            return;
        }
        let mut names = HashMap::from([("#usage".to_owned(), "usage".to_owned())]);
        let mut removes = Vec::new();
        for (i, period) in leftovers.into_iter().enumerate() {
            names.insert(format!("#p{i}"), period.clone());
            removes.push(format!("#usage.#p{i}"));
        }
        let request = self
            .client
            .update_item()
            .set_table_name(self.tables.users.clone())
            .set_key(Some(key))
            .update_expression(format!("REMOVE {}", removes.join(", ")))
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names));
        if let Err(error) = conditional(|| request.clone().send()).await {
            tracing::warn!(error = %Chain(&error), "removing old counters failed; the next write tries again");
        }
    }
}

/// A condition refused what the rules admit: the two disagree (a bug), so refuse.
fn disagreement() -> PortError {
    PortError::Other("a metering condition refused what the metering rules admit".into())
}

#[async_trait]
impl Metering for DynamoStore {
    async fn meter(&self, meter: &Meter<'_>) -> PortResult<Metered> {
        if !meter.count {
            return Ok(verdict(self.key_entry_and_account(meter.digest).await?, meter));
        }
        let periods = Periods::of(meter);
        let (entry, counted_on_key) = if meter.kind == Some(KeyKind::Master) {
            let Some(entry) = self.key_entry(meter.digest).await? else {
                return Ok(Metered::Refused(Refusal::UNKNOWN));
            };
            if let Some(refusal) = entry_refusal(&entry, meter, 0) {
                return Ok(Metered::Refused(refusal));
            }
            (entry, false)
        } else {
            match self.count_on_key(meter, &periods).await? {
                KeyCount::Counted(entry) => (entry, true),
                KeyCount::Master(entry) => (entry, false),
                KeyCount::Refused(refusal) => return Ok(Metered::Refused(refusal)),
            }
        };
        let outcome = self.count_on_account(meter, &periods, &entry).await;
        if counted_on_key && !matches!(outcome, Ok(Ok(_))) {
            self.take_back(meter, &periods).await;
        }
        Ok(match outcome? {
            Ok(account) => Metered::Admitted { entry, account },
            Err(refusal) => Metered::Refused(refusal),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counting_expression_adds_the_cost_and_drops_the_previous_periods() {
        let periods = Periods {
            day: "day:2026-12-02".into(),
            month: "month:2026-12".into(),
            yesterday: "day:2026-12-01".into(),
            last_month: "month:2026-11".into(),
        };
        let mut write = CountingWrite::new(&periods, 3);
        assert_eq!(
            write.expression(),
            "SET #usage.#day = if_not_exists(#usage.#day, :zero) + :cost, \
             #usage.#month = if_not_exists(#usage.#month, :zero) + :cost REMOVE #usage.#yesterday, #usage.#lastMonth"
        );
        assert_eq!(write.room("#day", 10, 3), "(attribute_not_exists(#usage.#day) OR #usage.#day <= :mostday)");
        assert_eq!(write.values[":mostday"], n(7));
        assert_eq!(write.room("#month", 2, 3), "attribute_not_exists(pk)", "a cost above the cap never fits");
        write.serves_client(None);
        write.serves_user(None, None);
        write.holds(Need::Nothing);
        assert_eq!(write.conditions.len(), 1, "no client, user or scope named: no condition");
        write.serves_client(Some("world"));
        write.serves_user(Some("world"), Some("gm"));
        write.holds(Need::Scope(crate::domain::scopes::Scope::RollRead));
        assert_eq!(write.names["#forClient"], "world");
        assert_eq!(write.values[":scope"], s("c"));
        assert_eq!(write.conditions.len(), 4);
        // Every placeholder used is defined, and every one defined is used (DynamoDB refuses both).
        let text = format!("{} {}", write.expression(), write.conditions.join(" AND "));
        for name in write.names.keys() {
            assert!(text.contains(name.as_str()), "{name} unused");
        }
    }
}

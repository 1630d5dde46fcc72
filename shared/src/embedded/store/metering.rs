//! Metering: a request decided and counted in one write transaction.

use super::EmbeddedStore;
use crate::domain::keys::KeyKind;
use crate::domain::meter::{refusal, verdict, AccountMeter, Meter, Metered, Refusal};
use crate::domain::model::User;
use crate::domain::ports::{KeyIndex, Metering, PortResult};
use crate::records::{key_pk, user_pk, KeyItem, UserItem};
use async_trait::async_trait;
use redb::Durability;

#[async_trait]
impl Metering for EmbeddedStore {
    /// The rules of [`crate::domain::meter`] applied in one write transaction (redb
    /// serialises writers): exact under any concurrency.
    async fn meter(&self, meter: &Meter<'_>) -> PortResult<Metered> {
        if !meter.count {
            return Ok(verdict(self.key_entry_and_account(meter.digest).await?, meter));
        }
        let digest = meter.digest.clone();
        let (client_id, user_id) = (meter.client_id.map(str::to_owned), meter.user_id.map(str::to_owned));
        let (kind, now, cost, daily_limit, monthly_limit) =
            (meter.kind, meter.now, meter.cost, meter.daily_limit, meter.monthly_limit);
        let (need, master_allowed, require_verified) = (meter.need, meter.master_allowed, meter.require_verified);
        self.write_with(Durability::None, move |tx| {
            let meter = Meter {
                digest: &digest,
                kind,
                now,
                cost,
                count: true,
                client_id: client_id.as_deref(),
                user_id: user_id.as_deref(),
                need,
                master_allowed,
                require_verified,
                daily_limit,
                monthly_limit,
            };
            let Some(mut entry) = tx.get::<KeyItem>(&key_pk(&digest))?.map(|item| item.into_entry(&digest)) else {
                return Ok(verdict(None, &meter));
            };
            let user = tx.get::<UserItem>(&user_pk(&entry.user_id))?.map(User::from);
            let refused = refusal(&entry, user.as_ref(), &meter);
            let (None, Some(mut user)) = (refused, user) else {
                // `refusal` names a missing account `Unknown`: the `None` is never used.
                return Ok(Metered::Refused(refused.unwrap_or(Refusal::UNKNOWN)));
            };
            user.usage.add(now, cost);
            tx.put(&user_pk(&user.id), &UserItem::from(&user))?;
            if entry.kind == KeyKind::Scoped {
                entry.usage.add(now, cost);
                tx.put(&key_pk(&digest), &KeyItem::from(&entry))?;
            }
            Ok(Metered::Admitted { entry, account: AccountMeter::from(&user) })
        })
        .await
    }
}

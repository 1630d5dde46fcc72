//! Scopes: what a scoped key may do on the relay. The catalogue, the default set and the
//! route table are the relay 3.x's (`go-relay/internal/model/scopes.go`,
//! `go-relay/internal/handler/routes.go`, 3.4.1); a relay with other routes maps them with
//! `ROUTE_SCOPES` ([`RouteScopes::with_setting`]).

use crate::domain::named::named_enum;
use std::collections::BTreeMap;

named_enum! {
    /// One thing a key may do on the relay (the relay 3.x's scope strings).
    pub enum Scope {
        EntityRead => "entity:read",
        EntityWrite => "entity:write",
        RollRead => "roll:read",
        RollExecute => "roll:execute",
        ChatRead => "chat:read",
        ChatWrite => "chat:write",
        EncounterRead => "encounter:read",
        EncounterManage => "encounter:manage",
        MacroList => "macro:list",
        MacroExecute => "macro:execute",
        MacroWrite => "macro:write",
        SceneRead => "scene:read",
        SceneWrite => "scene:write",
        CanvasRead => "canvas:read",
        CanvasWrite => "canvas:write",
        EffectsRead => "effects:read",
        EffectsWrite => "effects:write",
        UserRead => "user:read",
        UserWrite => "user:write",
        FileRead => "file:read",
        FileWrite => "file:write",
        PlaylistControl => "playlist:control",
        WorldInfo => "world:info",
        ClientsRead => "clients:read",
        SheetRead => "sheet:read",
        EventsSubscribe => "events:subscribe",
        SessionManage => "session:manage",
        ExecuteJs => "execute-js",
        Search => "search",
        StructureRead => "structure:read",
        StructureWrite => "structure:write",
        Dnd5e => "dnd5e",
    }
}

impl Scope {
    /// What a new key gets when its creator names no scopes: the relay's read-only set.
    pub const DEFAULT: [Scope; 17] = [
        Scope::EntityRead,
        Scope::RollRead,
        Scope::ChatRead,
        Scope::EncounterRead,
        Scope::MacroList,
        Scope::SceneRead,
        Scope::CanvasRead,
        Scope::EffectsRead,
        Scope::UserRead,
        Scope::FileRead,
        Scope::WorldInfo,
        Scope::ClientsRead,
        Scope::SheetRead,
        Scope::EventsSubscribe,
        Scope::Search,
        Scope::StructureRead,
        Scope::Dnd5e,
    ];

    /// The scopes that can run arbitrary code in the world: the pages warn before granting them.
    pub const DANGEROUS: [Scope; 3] = [Scope::ExecuteJs, Scope::MacroExecute, Scope::MacroWrite];

    /// The scope named `name` exactly (the catalogue's spelling).
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.name() == name)
    }

    pub fn is_dangerous(self) -> bool {
        Scope::DANGEROUS.contains(&self)
    }

    /// The scope's one-character code (see [`Grant::code`]).
    pub fn code(self) -> char {
        char::from(CODES[self.index()])
    }
}

/// One character per scope, by catalogue position: how a key's index entry, which every
/// request reads and writes, holds its grant in a few bytes (a scope's name takes ten or
/// more). New scopes go at the end of the catalogue, so that stored codes keep their meaning.
const CODES: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyzABCDEF";
const _: () = assert!(Scope::COUNT <= CODES.len());

/// A set of scopes, in catalogue order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u64);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().fold(0, |bits, scope| bits | 1 << scope.index()))
    }

    pub fn default_set() -> Self {
        Self::of(Scope::DEFAULT)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & (1 << scope.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes, in catalogue order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |scope| self.contains(*scope))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::name).collect()
    }

    /// The set a client asked for: every string a scope of the catalogue, none twice;
    /// otherwise the first string that is not.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut set = ScopeSet::EMPTY;
        for name in names {
            let name = name.as_ref();
            match Scope::parse(name) {
                Some(scope) if !set.contains(scope) => set = ScopeSet(set.0 | 1 << scope.index()),
                _ => return Err(name.to_owned()),
            }
        }
        Ok(set)
    }

    /// The stored names read back; a name no longer in the catalogue grants nothing.
    pub fn from_stored<S: AsRef<str>>(names: &[S]) -> Self {
        Self::of(names.iter().filter_map(|name| Scope::parse(name.as_ref())))
    }
}

/// What a scoped key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// A key created before scopes existed: it keeps doing all it did (every scope, and
    /// routes of no scope), until its owner narrows it.
    Unrestricted,
    /// Exactly these scopes (empty: nothing).
    Only(ScopeSet),
}

impl Grant {
    /// Whether a request that needs `need` is within the grant.
    pub fn allows(self, need: Need) -> bool {
        match (self, need) {
            (_, Need::Nothing) | (Grant::Unrestricted, _) => true,
            (Grant::Only(set), Need::Scope(scope)) => set.contains(scope),
            (Grant::Only(_), Need::Unmapped) => false,
        }
    }

    /// The scopes the grant holds (every scope for an unrestricted key).
    pub fn scopes(self) -> ScopeSet {
        match self {
            Grant::Unrestricted => ScopeSet::of(Scope::ALL),
            Grant::Only(set) => set,
        }
    }

    /// The stored list (`None`: unrestricted).
    pub fn stored(self) -> Option<Vec<String>> {
        match self {
            Grant::Unrestricted => None,
            Grant::Only(set) => Some(set.names().into_iter().map(str::to_owned).collect()),
        }
    }

    pub fn from_stored<S: AsRef<str>>(stored: Option<&[S]>) -> Self {
        stored.map_or(Grant::Unrestricted, |names| Grant::Only(ScopeSet::from_stored(names)))
    }

    /// The grant as the key's index entry stores it: one character per scope
    /// ([`Scope::code`]; `""` for none), `None` when unrestricted. A store tests a scope with
    /// a substring test (DynamoDB's `contains`).
    pub fn code(self) -> Option<String> {
        match self {
            Grant::Unrestricted => None,
            Grant::Only(set) => Some(set.iter().map(Scope::code).collect()),
        }
    }

    /// The grant of a stored code; a character of no scope grants nothing.
    pub fn from_code(code: Option<&str>) -> Self {
        code.map_or(Grant::Unrestricted, |code| {
            Grant::Only(ScopeSet::of(Scope::ALL.into_iter().filter(|scope| code.contains(scope.code()))))
        })
    }
}

/// What a relay request needs of a scoped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No scope: the door was asked about no route (verify without `scope`, `method` or
    /// `path`), or the route is open to every key of the account (`ROUTE_SCOPES`).
    Nothing,
    Scope(Scope),
    /// A route in no entry of the table: refused for keys that hold scopes.
    Unmapped,
}

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Parameter,
}

/// What an entry of the table asks of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Scope(Scope),
    /// Any key of the account (`"open"` in `ROUTE_SCOPES`).
    Open,
    /// Refused to keys that hold scopes (`"deny"`, for the fallback).
    Deny,
}

impl Rule {
    fn need(self) -> Need {
        match self {
            Rule::Scope(scope) => Need::Scope(scope),
            Rule::Open => Need::Nothing,
            Rule::Deny => Need::Unmapped,
        }
    }

    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "open" => Ok(Rule::Open),
            "deny" => Ok(Rule::Deny),
            _ => Scope::parse(value)
                .map(Rule::Scope)
                .ok_or_else(|| format!("{value:?} is not a scope, \"open\" or \"deny\"")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// `None`: every method (`*`).
    method: Option<String>,
    segments: Vec<Segment>,
    /// The pattern ends in `/*`: any rest of the path, also none.
    rest: bool,
    rule: Rule,
    /// From `ROUTE_SCOPES`: consulted before the relay's table.
    configured: bool,
}

impl Entry {
    /// `"GET /macro/{uuid}/execute"`, `"* /dnd5e/*"`.
    fn parse(route: &str, rule: Rule, configured: bool) -> Result<Self, String> {
        let (method, path) =
            route.trim().split_once(' ').ok_or_else(|| format!("{route:?} is not \"METHOD /path\""))?;
        let method = match method {
            "*" => None,
            m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()) => Some(m.to_ascii_uppercase()),
            _ => return Err(format!("{route:?} has no method")),
        };
        let path = path.trim();
        let Some(path) = path.strip_prefix('/') else {
            return Err(format!("{route:?}: the path must start with /"));
        };
        let (path, rest) = match path.strip_suffix("/*").or_else(|| (path == "*").then_some("")) {
            Some(head) => (head, true),
            None => (path.strip_suffix('/').unwrap_or(path), false),
        };
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(_) => Segment::Parameter,
                None => Segment::Literal(s.to_owned()),
            })
            .collect();
        Ok(Self { method, segments, rest, rule, configured })
    }

    fn matches(&self, method: &str, path: &[&str]) -> bool {
        if self.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(method)) {
            return false;
        }
        let fits = if self.rest { path.len() >= self.segments.len() } else { path.len() == self.segments.len() };
        fits && self.segments.iter().zip(path).all(|(segment, given)| match segment {
            Segment::Literal(literal) => literal == given,
            Segment::Parameter => !given.is_empty(),
        })
    }

    /// The most specific match wins: configured entries, then more literal segments, then
    /// a named method, then an exact length.
    fn rank(&self) -> (bool, usize, bool, bool) {
        let literals = self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
        (self.configured, literals, self.method.is_some(), !self.rest)
    }
}

/// The relay 3.x's routes and the scope each requires (`../shared/relay-routes.md`).
pub const RELAY_ROUTES: &[(Scope, &[&str])] = &[
    (Scope::EntityRead, &["GET /get", "POST /select", "GET /selected", "GET /players"]),
    (
        Scope::EntityWrite,
        &[
            "POST /create",
            "PUT /update",
            "DELETE /delete",
            "POST /give",
            "POST /remove",
            "POST /decrease",
            "POST /increase",
            "POST /kill",
        ],
    ),
    (Scope::Search, &["GET /search"]),
    (Scope::RollRead, &["GET /rolls", "GET /lastroll"]),
    (Scope::RollExecute, &["POST /roll"]),
    (
        Scope::EventsSubscribe,
        &[
            "GET /rolls/subscribe",
            "GET /chat/subscribe",
            "GET /hooks/subscribe",
            "GET /encounters/subscribe",
            "GET /actor/subscribe",
            "GET /scene/subscribe",
        ],
    ),
    (Scope::EncounterRead, &["GET /encounters"]),
    (
        Scope::EncounterManage,
        &[
            "POST /start-encounter",
            "POST /next-turn",
            "POST /next-round",
            "POST /last-turn",
            "POST /last-round",
            "POST /end-encounter",
            "POST /add-to-encounter",
            "POST /remove-from-encounter",
        ],
    ),
    (Scope::MacroList, &["GET /macros"]),
    (Scope::MacroExecute, &["POST /macro/{uuid}/execute"]),
    (Scope::StructureRead, &["GET /structure", "GET /contents/*", "GET /get-folder"]),
    (Scope::StructureWrite, &["POST /create-folder", "DELETE /delete-folder"]),
    (Scope::ExecuteJs, &["POST /execute-js"]),
    (Scope::UserRead, &["GET /users", "GET /user"]),
    (Scope::UserWrite, &["POST /user", "PUT /user", "DELETE /user"]),
    (Scope::SceneRead, &["GET /scene", "GET /scene/image", "GET /scene/image/raw"]),
    (Scope::SceneWrite, &["POST /scene", "PUT /scene", "DELETE /scene", "POST /switch-scene"]),
    (Scope::CanvasRead, &["GET /canvas/{documentType}", "GET /measure-distance"]),
    (
        Scope::CanvasWrite,
        &[
            "POST /canvas/{documentType}",
            "PUT /canvas/{documentType}",
            "DELETE /canvas/{documentType}",
            "POST /move-token",
        ],
    ),
    (Scope::ChatRead, &["GET /chat"]),
    (Scope::ChatWrite, &["POST /chat", "DELETE /chat/{messageId}", "DELETE /chat"]),
    (Scope::EffectsRead, &["GET /effects", "GET /effects/list"]),
    (Scope::EffectsWrite, &["POST /effects", "DELETE /effects"]),
    (Scope::WorldInfo, &["GET /world-info"]),
    (
        Scope::PlaylistControl,
        &[
            "GET /playlists",
            "POST /playlist/play",
            "POST /playlist/stop",
            "POST /playlist/next",
            "POST /playlist/volume",
            "POST /play-sound",
            "POST /stop-sound",
        ],
    ),
    (Scope::ClientsRead, &["GET /clients"]),
    (Scope::FileRead, &["GET /file-system", "GET /download"]),
    (Scope::FileWrite, &["POST /upload"]),
    (Scope::SheetRead, &["GET /sheet"]),
    (Scope::SessionManage, &["POST /session-handshake", "POST /start-session", "DELETE /end-session", "GET /session"]),
    (Scope::Dnd5e, &["* /dnd5e/*"]),
];

/// The relay's WebSockets (the Foundry module's and the clients'): they authenticate in
/// their first message, where the relay maps each action to its scope, so their upgrade
/// needs none.
pub const OPEN_ROUTES: &[&str] = &["GET /relay", "GET /ws/api"];

/// The route table: which scope a relay request needs, by method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteScopes {
    entries: Vec<Entry>,
    /// What a route in no entry needs (`"*"` in `ROUTE_SCOPES`; deny by default).
    fallback: Rule,
}

impl Default for RouteScopes {
    fn default() -> Self {
        let entries = RELAY_ROUTES
            .iter()
            .flat_map(|(scope, routes)| routes.iter().map(|route| (Rule::Scope(*scope), *route)))
            .chain(OPEN_ROUTES.iter().map(|route| (Rule::Open, *route)))
            .map(|(rule, route)| Entry::parse(route, rule, false))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|error| unreachable!("the relay's table parses: {error}"));
        Self { entries, fallback: Rule::Deny }
    }
}

impl RouteScopes {
    /// The relay's table with `ROUTE_SCOPES` over it: a JSON object from `"METHOD /path"`
    /// (method `*` for any; `{name}` one segment; a final `/*` any rest) to a scope,
    /// `"open"` (any key of the account) or `"deny"`; the key `"*"` says what a route in
    /// no entry needs (default `"deny"`). Its entries win over the relay's.
    pub fn with_setting(setting: &str) -> Result<Self, String> {
        let map: BTreeMap<String, String> =
            serde_json::from_str(setting).map_err(|e| format!("not a JSON object of strings: {e}"))?;
        let mut table = Self::default();
        for (route, value) in map {
            let rule = Rule::parse(&value)?;
            if route.trim() == "*" {
                table.fallback = rule;
            } else {
                table.entries.push(Entry::parse(&route, rule, true)?);
            }
        }
        Ok(table)
    }

    /// What a request of `method` on `path` needs. A query string and a trailing slash are
    /// ignored; an empty segment inside the path matches no literal.
    pub fn need(&self, method: &str, path: &str) -> Need {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.strip_prefix('/').unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        let segments: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
        self.entries
            .iter()
            .filter(|entry| entry.matches(method, &segments))
            .max_by_key(|entry| entry.rank())
            .map_or(self.fallback, |entry| entry.rule)
            .need()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_and_the_default_set_are_the_relays() {
        assert_eq!(Scope::COUNT, 32);
        assert_eq!(Scope::DEFAULT.len(), 17);
        // Read-only: no write, execute or manage scope, nothing dangerous.
        for scope in Scope::DEFAULT {
            let name = scope.name();
            assert!(!["write", "execute", "manage", "control"].iter().any(|w| name.contains(w)), "{name}");
            assert!(!scope.is_dangerous(), "{name}");
        }
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
        assert_eq!(Scope::parse("Roll:Read"), None);
    }

    #[test]
    fn a_requested_list_names_its_first_unknown_or_repeated_scope() {
        assert_eq!(
            ScopeSet::parse(&["roll:read", "chat:read"]).map(ScopeSet::names),
            Ok(vec!["roll:read", "chat:read"])
        );
        assert_eq!(ScopeSet::parse::<&str>(&[]), Ok(ScopeSet::EMPTY));
        assert_eq!(ScopeSet::parse(&["roll:read", "roll:fly", "nope"]), Err("roll:fly".to_owned()));
        assert_eq!(ScopeSet::parse(&["search", "dnd5e", "search"]), Err("search".to_owned()));
        // Catalogue order, whatever the order asked.
        assert_eq!(ScopeSet::parse(&["dnd5e", "entity:read"]).map(ScopeSet::names), Ok(vec!["entity:read", "dnd5e"]));
    }

    #[test]
    fn an_empty_grant_allows_nothing_and_an_unrestricted_one_everything() {
        let none = Grant::Only(ScopeSet::EMPTY);
        let rolls = Grant::Only(ScopeSet::of([Scope::RollRead]));
        for scope in Scope::ALL {
            assert!(!none.allows(Need::Scope(scope)));
            assert!(Grant::Unrestricted.allows(Need::Scope(scope)));
            assert_eq!(rolls.allows(Need::Scope(scope)), scope == Scope::RollRead);
        }
        assert!(!rolls.allows(Need::Unmapped) && Grant::Unrestricted.allows(Need::Unmapped));
        assert!(none.allows(Need::Nothing));
        assert_eq!(Grant::from_stored::<String>(None), Grant::Unrestricted);
        assert_eq!(Grant::from_stored(Some(&["roll:read", "gone:away"][..])), rolls);
        assert_eq!(rolls.stored(), Some(vec!["roll:read".to_owned()]));
    }

    #[test]
    fn a_grant_is_coded_one_character_per_scope_and_read_back() {
        // Pinned: stored entries keep their meaning.
        assert_eq!((Scope::EntityRead.code(), Scope::RollRead.code(), Scope::Dnd5e.code()), ('a', 'c', 'F'));
        let codes: std::collections::HashSet<char> = Scope::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), Scope::COUNT);
        for grant in [
            Grant::Unrestricted,
            Grant::Only(ScopeSet::EMPTY),
            Grant::Only(ScopeSet::default_set()),
            Grant::Only(ScopeSet::of(Scope::ALL)),
        ] {
            assert_eq!(Grant::from_code(grant.code().as_deref()), grant);
        }
        assert_eq!(Grant::Only(ScopeSet::default_set()).code().map(|c| c.len()), Some(17));
        assert_eq!(Grant::Only(ScopeSet::EMPTY).code(), Some(String::new()));
    }

    /// Every route of `../shared/relay-routes.md`, written out as that table has it.
    #[test]
    fn every_relay_route_needs_its_scope() {
        let table = RouteScopes::default();
        let cases: &[(&str, &str, Scope)] = &[
            ("GET", "/get", Scope::EntityRead),
            ("POST", "/select", Scope::EntityRead),
            ("GET", "/selected", Scope::EntityRead),
            ("GET", "/players", Scope::EntityRead),
            ("POST", "/create", Scope::EntityWrite),
            ("PUT", "/update", Scope::EntityWrite),
            ("DELETE", "/delete", Scope::EntityWrite),
            ("POST", "/give", Scope::EntityWrite),
            ("POST", "/remove", Scope::EntityWrite),
            ("POST", "/decrease", Scope::EntityWrite),
            ("POST", "/increase", Scope::EntityWrite),
            ("POST", "/kill", Scope::EntityWrite),
            ("GET", "/search", Scope::Search),
            ("GET", "/rolls", Scope::RollRead),
            ("GET", "/lastroll", Scope::RollRead),
            ("POST", "/roll", Scope::RollExecute),
            ("GET", "/rolls/subscribe", Scope::EventsSubscribe),
            ("GET", "/chat/subscribe", Scope::EventsSubscribe),
            ("GET", "/hooks/subscribe", Scope::EventsSubscribe),
            ("GET", "/encounters/subscribe", Scope::EventsSubscribe),
            ("GET", "/actor/subscribe", Scope::EventsSubscribe),
            ("GET", "/scene/subscribe", Scope::EventsSubscribe),
            ("GET", "/encounters", Scope::EncounterRead),
            ("POST", "/start-encounter", Scope::EncounterManage),
            ("POST", "/next-turn", Scope::EncounterManage),
            ("POST", "/next-round", Scope::EncounterManage),
            ("POST", "/last-turn", Scope::EncounterManage),
            ("POST", "/last-round", Scope::EncounterManage),
            ("POST", "/end-encounter", Scope::EncounterManage),
            ("POST", "/add-to-encounter", Scope::EncounterManage),
            ("POST", "/remove-from-encounter", Scope::EncounterManage),
            ("GET", "/macros", Scope::MacroList),
            ("POST", "/macro/Macro.a1B2c3D4e5F6g7H8/execute", Scope::MacroExecute),
            ("GET", "/structure", Scope::StructureRead),
            ("GET", "/contents/Compendium.dnd5e.items", Scope::StructureRead),
            ("GET", "/contents/a/b/c", Scope::StructureRead),
            ("GET", "/get-folder", Scope::StructureRead),
            ("POST", "/create-folder", Scope::StructureWrite),
            ("DELETE", "/delete-folder", Scope::StructureWrite),
            ("POST", "/execute-js", Scope::ExecuteJs),
            ("GET", "/users", Scope::UserRead),
            ("GET", "/user", Scope::UserRead),
            ("POST", "/user", Scope::UserWrite),
            ("PUT", "/user", Scope::UserWrite),
            ("DELETE", "/user", Scope::UserWrite),
            ("GET", "/scene", Scope::SceneRead),
            ("GET", "/scene/image", Scope::SceneRead),
            ("GET", "/scene/image/raw", Scope::SceneRead),
            ("POST", "/scene", Scope::SceneWrite),
            ("PUT", "/scene", Scope::SceneWrite),
            ("DELETE", "/scene", Scope::SceneWrite),
            ("POST", "/switch-scene", Scope::SceneWrite),
            ("GET", "/canvas/tokens", Scope::CanvasRead),
            ("GET", "/measure-distance", Scope::CanvasRead),
            ("POST", "/canvas/tokens", Scope::CanvasWrite),
            ("PUT", "/canvas/walls", Scope::CanvasWrite),
            ("DELETE", "/canvas/drawings", Scope::CanvasWrite),
            ("POST", "/move-token", Scope::CanvasWrite),
            ("GET", "/chat", Scope::ChatRead),
            ("POST", "/chat", Scope::ChatWrite),
            ("DELETE", "/chat/ChatMessage.x1", Scope::ChatWrite),
            ("DELETE", "/chat", Scope::ChatWrite),
            ("GET", "/effects", Scope::EffectsRead),
            ("GET", "/effects/list", Scope::EffectsRead),
            ("POST", "/effects", Scope::EffectsWrite),
            ("DELETE", "/effects", Scope::EffectsWrite),
            ("GET", "/world-info", Scope::WorldInfo),
            ("GET", "/playlists", Scope::PlaylistControl),
            ("POST", "/playlist/play", Scope::PlaylistControl),
            ("POST", "/playlist/stop", Scope::PlaylistControl),
            ("POST", "/playlist/next", Scope::PlaylistControl),
            ("POST", "/playlist/volume", Scope::PlaylistControl),
            ("POST", "/play-sound", Scope::PlaylistControl),
            ("POST", "/stop-sound", Scope::PlaylistControl),
            ("GET", "/clients", Scope::ClientsRead),
            ("GET", "/file-system", Scope::FileRead),
            ("GET", "/download", Scope::FileRead),
            ("POST", "/upload", Scope::FileWrite),
            ("GET", "/sheet", Scope::SheetRead),
            ("POST", "/session-handshake", Scope::SessionManage),
            ("POST", "/start-session", Scope::SessionManage),
            ("DELETE", "/end-session", Scope::SessionManage),
            ("GET", "/session", Scope::SessionManage),
            ("GET", "/dnd5e/get-actor-details", Scope::Dnd5e),
            ("POST", "/dnd5e/modify-item-charges", Scope::Dnd5e),
            ("PATCH", "/dnd5e/x/y", Scope::Dnd5e),
        ];
        for (method, path, scope) in cases {
            assert_eq!(table.need(method, path), Need::Scope(*scope), "{method} {path}");
        }
        // Every route of the table is in the cases: one case per entry, at least.
        let routes: usize = RELAY_ROUTES.iter().map(|(_, routes)| routes.len()).sum();
        assert_eq!(routes, 83, "the routes of relay-routes.md");
        for (scope, routes) in RELAY_ROUTES {
            for route in *routes {
                let (method, path) = route.split_once(' ').unwrap_or_default();
                let covered = cases.iter().any(|(m, p, s)| {
                    s == scope
                        && (method == "*" || m == &method)
                        && Entry::parse(route, Rule::Deny, false).is_ok_and(|e| {
                            let segments: Vec<&str> = p.trim_start_matches('/').split('/').collect();
                            e.matches(m, &segments)
                        })
                });
                assert!(covered, "no case for {route} ({path})");
            }
        }
        // macro:write is in the catalogue but no HTTP route requires it.
        assert!(RELAY_ROUTES.iter().all(|(scope, _)| *scope != Scope::MacroWrite));
    }

    #[test]
    fn query_strings_and_a_trailing_slash_are_ignored_and_the_rest_is_denied() {
        let table = RouteScopes::default();
        assert_eq!(table.need("GET", "/rolls/?limit=5"), Need::Scope(Scope::RollRead));
        assert_eq!(table.need("get", "/rolls#x"), Need::Scope(Scope::RollRead));
        assert_eq!(table.need("POST", "/macro/Macro.x/execute/"), Need::Scope(Scope::MacroExecute));
        // The WebSockets check scopes per message, in the relay.
        assert_eq!(table.need("GET", "/relay?id=table-1"), Need::Nothing);
        assert_eq!(table.need("GET", "/ws/api"), Need::Nothing);
        assert_eq!(table.need("POST", "/relay"), Need::Unmapped);
        for (method, path) in [
            ("GET", "/"),
            ("GET", ""),
            ("GET", "/admin"),
            ("PATCH", "/rolls"),
            ("POST", "/macro//execute"),
            ("POST", "/macro/a/b/execute"),
            ("GET", "//rolls"),
            ("GET", "/rolls//"),
            ("GET", "/Rolls"),
            ("GET", "/canvas"),
            ("GET", "/dnd5e"),
        ] {
            assert_eq!(
                table.need(method, path),
                if path == "/dnd5e" { Need::Scope(Scope::Dnd5e) } else { Need::Unmapped },
                "{method} {path}"
            );
        }
    }

    #[test]
    fn the_setting_adds_routes_overrides_the_relays_and_may_open_the_rest() {
        let table = RouteScopes::with_setting(
            r#"{"GET /custom/{id}": "entity:read", "POST /roll": "entity:write", "GET /health": "open", "*": "open"}"#,
        )
        .unwrap();
        assert_eq!(table.need("GET", "/custom/42"), Need::Scope(Scope::EntityRead));
        assert_eq!(table.need("POST", "/roll"), Need::Scope(Scope::EntityWrite));
        assert_eq!(table.need("GET", "/health"), Need::Nothing);
        assert_eq!(table.need("GET", "/elsewhere"), Need::Nothing);
        assert_eq!(table.need("GET", "/rolls"), Need::Scope(Scope::RollRead), "the relay's table still holds");
        let closed = RouteScopes::with_setting(r#"{"GET /rolls": "deny"}"#).unwrap();
        assert_eq!(closed.need("GET", "/rolls"), Need::Unmapped);
        for bad in
            [r#"{"GET /x": "roll:fly"}"#, r#"{"GET x": "search"}"#, r#"{"/x": "search"}"#, "[]", r#"{"GET /x": 1}"#]
        {
            assert!(RouteScopes::with_setting(bad).is_err(), "{bad}");
        }
    }
}

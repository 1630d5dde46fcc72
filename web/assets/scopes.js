// The relay's scope catalogue, once for every page: each scope's name (the wire's string),
// the area the pickers group it under, what it allows in words, whether a new key gets it
// by default (the relay's read-only set) and whether it can run code in the world, in the
// catalogue's order (the API's). A Rust test (web/src/lib.rs) keeps this list equal to
// shared::domain::scopes::Scope.

export const AREAS = [
  { id: 'entities', label: 'Actors, items and sheets' },
  { id: 'rolls', label: 'Rolls' },
  { id: 'chat', label: 'Chat' },
  { id: 'encounters', label: 'Encounters' },
  { id: 'macros', label: 'Macros' },
  { id: 'scenes', label: 'Scenes' },
  { id: 'canvas', label: 'Canvas' },
  { id: 'effects', label: 'Effects' },
  { id: 'users', label: 'Users' },
  { id: 'files', label: 'Files' },
  { id: 'playlists', label: 'Playlists and sounds' },
  { id: 'world', label: 'World, folders and compendiums' },
  { id: 'systems', label: 'Game systems' },
  { id: 'sessions', label: 'Sessions' },
  { id: 'events', label: 'Events' },
  { id: 'dangerous', label: 'Run code in the world' },
];

export const SCOPES = [
  { name: 'entity:read', area: 'entities', text: 'Read actors, items and other documents; see selected tokens', default: true },
  { name: 'entity:write', area: 'entities', text: 'Create, change and delete documents; give, take and change quantities' },
  { name: 'roll:read', area: 'rolls', text: 'Read recent rolls', default: true },
  { name: 'roll:execute', area: 'rolls', text: 'Make rolls' },
  { name: 'chat:read', area: 'chat', text: 'Read chat messages', default: true },
  { name: 'chat:write', area: 'chat', text: 'Send and delete chat messages' },
  { name: 'encounter:read', area: 'encounters', text: 'Read encounters', default: true },
  { name: 'encounter:manage', area: 'encounters', text: 'Start, advance and end encounters; add and remove combatants' },
  { name: 'macro:list', area: 'macros', text: 'List macros', default: true },
  { name: 'macro:execute', area: 'dangerous', text: 'Run macros', dangerous: true },
  { name: 'macro:write', area: 'dangerous', text: 'Create and change macros', dangerous: true },
  { name: 'scene:read', area: 'scenes', text: 'Read scenes and their images', default: true },
  { name: 'scene:write', area: 'scenes', text: 'Create, change, delete and switch scenes' },
  { name: 'canvas:read', area: 'canvas', text: 'Read tokens, tiles, walls and other canvas documents; measure distances', default: true },
  { name: 'canvas:write', area: 'canvas', text: 'Create, change and delete canvas documents; move tokens' },
  { name: 'effects:read', area: 'effects', text: 'Read active effects', default: true },
  { name: 'effects:write', area: 'effects', text: 'Add and remove active effects' },
  { name: 'user:read', area: 'users', text: 'Read the world\'s users', default: true },
  { name: 'user:write', area: 'users', text: 'Create, change and delete users' },
  { name: 'file:read', area: 'files', text: 'Browse and download files', default: true },
  { name: 'file:write', area: 'files', text: 'Upload files' },
  { name: 'playlist:control', area: 'playlists', text: 'List, play and stop playlists and sounds' },
  { name: 'world:info', area: 'world', text: 'Read the world\'s details', default: true },
  { name: 'clients:read', area: 'world', text: 'See which Foundry worlds are connected', default: true },
  { name: 'sheet:read', area: 'entities', text: 'Read character sheets', default: true },
  { name: 'events:subscribe', area: 'events', text: 'Follow rolls, chat, encounters and other changes as they happen', default: true },
  { name: 'session:manage', area: 'sessions', text: 'Start and end headless Foundry sessions' },
  { name: 'execute-js', area: 'dangerous', text: 'Run any JavaScript in the world', dangerous: true },
  { name: 'search', area: 'entities', text: 'Search the world', default: true },
  { name: 'structure:read', area: 'world', text: 'Read folders and compendium contents', default: true },
  { name: 'structure:write', area: 'world', text: 'Create and delete folders' },
  { name: 'dnd5e', area: 'systems', text: 'Use the D&D 5th edition routes', default: true },
];

export const ALL = SCOPES.map((s) => s.name);
export const DEFAULT = SCOPES.filter((s) => s.default).map((s) => s.name);
export const DANGEROUS = SCOPES.filter((s) => s.dangerous).map((s) => s.name);

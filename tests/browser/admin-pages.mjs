// The back office's pages that the staff walk (staff.test.mjs) audits: axe (light, then colour
// contrast in dark mode), a 360 px phone (no horizontal scroll, axe) and the W3C Nu checker.
//
// To add a page, add an entry here: `label` names it in the test output; `path(ctx)` gives its
// address from what the walk has made (`ctx.organisation`: the id of the organisation it opened,
// `ctx.message`: the id of that organisation's event request sent through /contact, `ctx.run`: a
// string unique to the run); `status` is what it must answer (200 by default). Pages that need
// something else made first can add it to the walk's `setUp` step in staff.test.mjs and to `ctx`.
// Form states (a form sent with errors) are walked in staff.test.mjs itself.
export const ADMIN_PAGES = [
  // Organisations (helper D)
  { label: 'admin', path: () => '/admin' },
  { label: 'admin organisations', path: () => '/admin/organisations' },
  { label: 'admin organisations (search)', path: (ctx) => `/admin/organisations?q=${encodeURIComponent(ctx.run)}` },
  { label: 'admin organisation', path: (ctx) => `/admin/organisations/${ctx.organisation}` },
  { label: 'admin organisation (ledger page 2)', path: (ctx) => `/admin/organisations/${ctx.organisation}?page=2` },
  { label: 'admin new organisation', path: () => '/admin/organisations/nouvelle' },
  { label: 'admin raise', path: (ctx) => `/admin/organisations/${ctx.organisation}/limites` },
  { label: 'admin raise from a request', path: (ctx) => `/admin/organisations/${ctx.organisation}/limites?message=${ctx.message}` },
  { label: 'admin messages (new)', path: () => '/admin/messages' },
  { label: 'admin messages (all)', path: () => '/admin/messages?statut=tous' },
  { label: 'admin journal', path: () => '/admin/journal' },
  { label: 'admin journal (organisation)', path: (ctx) => `/admin/journal/${ctx.organisation}` },
  // Prices and packs
  { label: 'admin prices', path: () => '/admin/tarifs' },
  { label: 'admin prices preview (a date to come, a simulation)', path: () => '/admin/tarifs/apercu?date=2099-01-01&type=video&duree=10&quantite=3' },
  { label: 'admin prices preview (bad date and duration)', path: () => '/admin/tarifs/apercu?date=demain&type=video&duree=99', status: 400 },
  // Help-centre quality and operations
  { label: 'admin help-centre quality', path: () => '/admin/aide' },
  { label: 'admin help-centre quality (synonym added)', path: () => '/admin/aide?avis=synonyme' },
  { label: 'admin operations', path: () => '/admin/operations' },
  { label: 'admin operations (resent)', path: () => '/admin/operations?avis=renvoye' },
  { label: 'admin operations (ledger checked)', path: () => '/admin/operations?avis=verifie' },
];

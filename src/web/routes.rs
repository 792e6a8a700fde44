//! The URL map, once: every route of the portal with the kind of caller it serves, in
//! PRODUCT.md's order. `startup.rs` builds one scope per kind of caller from it, and everything
//! else that needs the map reads it from here: the guides' link check, the sitemap, robots.txt,
//! the password-form gate, and the tests (the CSRF walk of every POST route).
//!
//! A route names its caller; its scope gives it that caller's middleware (sessions and CSRF for
//! browser pages, the staff guard for `/admin`, JSON errors and no cookie for the API…), so a
//! route cannot end up behind the wrong ones by accident.

use actix_web::web;

use super::{
    abonnement, achats, admin, admin_aide, admin_operations, admin_organisations, admin_tarifs,
    aide, api, api_reseau, compte, contact, credits, generations, meta, openapi, simulateur,
    tableau_de_bord, webhooks,
};

/// Who calls a route, which decides the scope (and so the middleware) it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Pages that are the same for everyone (guides, assets, health): no session, no CSRF, served
    /// from memory before the request log.
    Shared,
    /// Anyone, without a session (search, robots, sitemap): GET only.
    Public,
    /// A person in a browser: server-side session, CSRF on every state change, HTML errors.
    Browser,
    /// NanoClip staff in a browser: as `Browser`, and the staff guard on the whole scope.
    Staff,
    /// Programs: JSON in and out, JSON errors, no cookie, no CSRF (an API key where needed).
    Api,
    /// The generation engine reporting outcomes: `Authorization: Bearer` with its token, JSON.
    Engine,
    /// The payment provider's webhooks: the raw body, a signature, JSON; no session, no CSRF.
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

/// What the rest of the portal needs to know of a route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub verb: Verb,
    /// The actix pattern (`/aide/{slug}`).
    pub path: &'static str,
    pub caller: Caller,
    /// A page for search engines: listed in the sitemap.
    pub sitemap: bool,
    /// Kept from crawlers by robots.txt.
    pub private: bool,
    /// The form checks or hashes a password: the password gate answers it first under a storm.
    pub password_form: bool,
    /// A `Browser` GET page without parameters in its path that reads the session only to know
    /// who is there and writes nothing to it: a request without a session cookie (a visitor)
    /// is served without the session and CSRF middleware, which would find nothing to load
    /// and nothing to save (see `cookieless_paths`).
    pub cookieless: bool,
    /// A GET page asked often that logs nothing of its own (the simulator, the search): its
    /// request span is at debug level (`telemetry::RequestSpan`, `quiet_paths`).
    pub quiet: bool,
    /// The actix route (its method and handler).
    build: fn() -> actix_web::Route,
}

/// Pages the guides already promise and that the next issues build: a guide may link to them
/// until they exist. The list must be empty once credits, generations and billing are built.
pub const PLANNED: &[&str] = &[];

macro_rules! route {
    ($verb:ident $path:literal, $caller:ident, $handler:path $(, $flag:ident)*) => {{
        #[allow(unused_mut)]
        let mut route = Route {
            verb: route!(@verb $verb),
            path: $path,
            caller: Caller::$caller,
            sitemap: false,
            private: false,
            password_form: false,
            cookieless: false,
            quiet: false,
            build: || web::$verb().to($handler),
        };
        $(route.$flag = true;)*
        route
    }};
    (@verb get) => { Verb::Get };
    (@verb post) => { Verb::Post };
}

/// Every route, in PRODUCT.md's order.
pub fn table() -> Vec<Route> {
    vec![
        route!(get "/", Browser, aide::home, sitemap),
        route!(get "/static/{name}", Shared, super::assets::serve),
        route!(get "/aide/recherche", Public, aide::search, quiet),
        route!(get "/aide/{slug}", Shared, aide::guide),
        route!(get "/aide/{slug}/avis", Browser, aide::vote, private),
        route!(post "/aide/{slug}/avis", Browser, aide::comment, private),
        route!(get "/simulateur", Browser, simulateur::page, sitemap, cookieless, quiet),
        route!(get "/compte/inscription", Browser, compte::sign_up_form, private),
        route!(post "/compte/inscription", Browser, compte::sign_up, private, password_form),
        route!(get "/compte/activation", Browser, compte::activation_page, private),
        route!(post "/compte/activation", Browser, compte::activate, private),
        route!(get "/compte/inscription/paiement", Browser, compte::sign_up_payment_page, private),
        route!(post "/compte/inscription/paiement", Browser, compte::sign_up_pay, private),
        route!(get "/compte/connexion", Browser, compte::login_form, private),
        route!(post "/compte/connexion", Browser, compte::login, private, password_form),
        route!(get "/compte/deconnexion", Browser, compte::logout_page, private),
        route!(post "/compte/deconnexion", Browser, compte::logout, private),
        route!(post "/compte/deconnexion-partout", Browser, compte::sign_out_everywhere, private),
        route!(get "/compte/mot-de-passe-oublie", Browser, compte::forgot_form, private),
        route!(post "/compte/mot-de-passe-oublie", Browser, compte::forgot, private),
        route!(get "/compte/reinitialisation", Browser, compte::reset_form, private),
        route!(post "/compte/reinitialisation", Browser, compte::reset, private, password_form),
        route!(get "/compte/invitation", Browser, compte::invitation_form, private),
        route!(post "/compte/invitation", Browser, compte::accept_invitation, private, password_form),
        route!(get "/compte/second-facteur", Browser, compte::second_factor_form, private),
        route!(post "/compte/second-facteur", Browser, compte::second_factor, private),
        route!(get "/compte/second-facteur/inscription", Browser, compte::enrolment_page, private),
        route!(post "/compte/second-facteur/inscription", Browser, compte::enrol, private, password_form),
        route!(get "/compte/info", Browser, compte::info, private),
        route!(get "/compte", Browser, compte::account, private),
        route!(post "/compte/mot-de-passe", Browser, compte::change_password, private, password_form),
        route!(post "/compte/email", Browser, compte::change_email, private, password_form),
        route!(get "/compte/email/confirmation", Browser, compte::email_confirmation_page, private),
        route!(post "/compte/email/confirmation", Browser, compte::confirm_email, private),
        route!(post "/compte/membres", Browser, compte::invite, private),
        route!(post "/compte/invitations/{id}/revocation", Browser, compte::revoke_invitation, private),
        route!(post "/compte/membres/{id}/retrait", Browser, compte::remove_member, private),
        route!(post "/compte/membres/{id}/propriete", Browser, compte::transfer_ownership, private),
        route!(post "/compte/seuil", Browser, compte::set_threshold, private),
        route!(get "/compte/api", Browser, compte::api_keys_page, private),
        route!(post "/compte/api", Browser, compte::create_api_key, private),
        route!(post "/compte/api/{id}/revocation", Browser, compte::revoke_api_key, private),
        route!(get "/tableau-de-bord", Browser, tableau_de_bord::page, private),
        route!(get "/credits/historique", Browser, credits::historique, private),
        route!(get "/credits/historique.csv", Browser, credits::export, private),
        route!(get "/abonnement", Browser, abonnement::page, private),
        route!(post "/abonnement/changement", Browser, abonnement::change, private),
        route!(post "/abonnement/annulation", Browser, abonnement::cancel, private),
        route!(post "/abonnement/reglement", Browser, abonnement::pay, private),
        route!(get "/achats", Browser, achats::catalogue, private),
        route!(get "/achats/historique", Browser, achats::history, private),
        // Before the page: `{number}` alone would take « FA-2026-000001.pdf » too.
        route!(get "/achats/factures/{number}.pdf", Browser, achats::invoice_pdf, private),
        route!(get "/achats/factures/{number}", Browser, achats::invoice, private),
        route!(get "/achats/retour/{id}", Browser, achats::return_page, private),
        route!(get "/achats/{pack}", Browser, achats::confirm_page, private),
        route!(post "/achats/{pack}", Browser, achats::buy, private),
        route!(get "/paiement-test/{id}", Browser, achats::test_payment_page, private),
        route!(post "/paiement-test/{id}", Browser, achats::test_payment, private),
        route!(get "/generations", Browser, generations::page, private),
        route!(post "/generations", Browser, generations::launch, private),
        route!(get "/contact", Browser, contact::form, sitemap),
        route!(post "/contact", Browser, contact::send),
        route!(get "/contact/merci", Browser, contact::thanks),
        route!(get "/admin", Staff, admin::page, private),
        route!(get "/admin/organisations", Staff, admin::organisations, private),
        // Before `{id}`: « nouvelle » is no organisation's id.
        route!(get "/admin/organisations/nouvelle", Staff, admin_organisations::opening_form, private),
        route!(post "/admin/organisations/nouvelle", Staff, admin_organisations::open, private),
        route!(get "/admin/organisations/{id}", Staff, admin::organisation, private),
        route!(post "/admin/organisations/{id}/suspension", Staff, admin_organisations::suspend, private),
        route!(post "/admin/organisations/{id}/reactivation", Staff, admin_organisations::reactivate, private),
        route!(get "/admin/organisations/{id}/limites", Staff, admin_organisations::raise_form, private),
        route!(post "/admin/organisations/{id}/limites", Staff, admin_organisations::raise, private),
        route!(get "/admin/messages", Staff, admin_organisations::messages, private),
        route!(post "/admin/messages/{id}/reponse", Staff, admin_organisations::mark_answered, private),
        route!(post "/admin/organisations/{id}/credits", Staff, admin::adjust, private),
        route!(post "/admin/commandes/{id}/remboursement", Staff, admin::refund, private),
        route!(get "/admin/journal", Staff, admin::journal, private),
        route!(get "/admin/journal/{organisation}", Staff, admin::journal, private),
        // Prices (issue 14): versions of the schedule, the preview, packs.
        route!(get "/admin/tarifs", Staff, admin_tarifs::page, private),
        route!(post "/admin/tarifs", Staff, admin_tarifs::publish, private),
        route!(get "/admin/tarifs/apercu", Staff, admin_tarifs::preview, private),
        route!(post "/admin/packs", Staff, admin_tarifs::add_pack, private),
        route!(post "/admin/packs/{id}", Staff, admin_tarifs::change_pack, private),
        route!(post "/admin/packs/{id}/retrait", Staff, admin_tarifs::retire_pack, private),
        // Help-centre quality and operations (issue 14).
        route!(get "/admin/aide", Staff, admin_aide::page, private),
        route!(post "/admin/aide/recherches/{id}/synonyme", Staff, admin_aide::add_synonym, private),
        route!(get "/admin/operations", Staff, admin_operations::page, private),
        route!(post "/admin/operations/courriels/{id}/renvoi", Staff, admin_operations::resend, private),
        route!(post "/admin/operations/grand-livre", Staff, admin_operations::check_ledger, private),
        route!(get "/api/v1/openapi.json", Api, openapi::document, private),
        route!(get "/api/v1/simulateur", Api, api::simulateur, private),
        route!(get "/api/v1/aide/recherche", Api, api::recherche, private),
        route!(get "/api/v1/solde", Api, api_reseau::solde, private),
        route!(post "/api/v1/generations", Api, api_reseau::launch, private),
        route!(get "/api/v1/generations", Api, api_reseau::generations_list, private),
        route!(get "/api/v1/generations/{id}", Api, api_reseau::generation, private),
        route!(post "/api/v1/moteur/generations/{id}", Engine, api_reseau::report, private),
        route!(post "/webhooks/paiement", Webhook, webhooks::payment, private),
        route!(get "/healthz", Shared, meta::healthz),
        route!(get "/sitemap.xml", Public, aide::sitemap),
        route!(get "/robots.txt", Public, meta::robots),
    ]
}

impl Caller {
    /// The path prefix of this caller's scope (its routes are registered relative to it).
    pub fn prefix(self) -> &'static str {
        match self {
            Caller::Api => "/api/v1",
            Caller::Engine => "/api/v1/moteur",
            Caller::Webhook => "/webhooks",
            Caller::Staff => "/admin",
            Caller::Shared | Caller::Public | Caller::Browser => "",
        }
    }
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// Registers the routes of `caller` (in the table's order) in its scope.
///
/// The JSON callers (`Api`, `Engine`) get one resource per path, which answers another method
/// 405 with `Allow` (as JSON, by their scope's middleware); elsewhere another method falls
/// through to the scope's 404.
pub fn register(cfg: &mut web::ServiceConfig, caller: Caller) {
    let routes: Vec<Route> = table().into_iter().filter(|r| r.caller == caller).collect();
    let relative = |path: &'static str| path.strip_prefix(caller.prefix()).unwrap_or(path);
    if !matches!(caller, Caller::Api | Caller::Engine) {
        for route in &routes {
            cfg.route(relative(route.path), (route.build)());
        }
        return;
    }
    let mut done: Vec<&str> = Vec::new();
    for route in &routes {
        if done.contains(&route.path) {
            continue;
        }
        done.push(route.path);
        let same: Vec<&Route> = routes.iter().filter(|r| r.path == route.path).collect();
        let allow = same
            .iter()
            .map(|r| r.verb.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut resource = web::resource(relative(route.path));
        for r in same {
            resource = resource.route((r.build)());
        }
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { super::api_error::method_not_allowed(&allow) }
        })));
    }
}

/// The paths of the `cookieless` routes: with GET and without a session cookie, `startup` serves
/// them from a scope without sessions and CSRF (the same handler, error pages and compression).
pub fn cookieless_paths() -> Vec<&'static str> {
    table()
        .into_iter()
        .filter(|r| r.cookieless)
        .map(|r| r.path)
        .collect()
}

/// The paths of the `quiet` routes (GET), read once.
pub fn quiet_paths() -> &'static [&'static str] {
    static PATHS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        table()
            .into_iter()
            .filter(|r| r.quiet && r.verb == Verb::Get)
            .map(|r| r.path)
            .collect()
    })
}

/// Registers the `cookieless` routes (GET, `Browser`) in the scope of visitors without a session.
pub fn register_cookieless(cfg: &mut web::ServiceConfig) {
    for route in table().into_iter().filter(|r| r.cookieless) {
        cfg.route(route.path, (route.build)());
    }
}

/// Whether a browser may be sent to `path` (a page of the map that answers GET in a browser).
pub fn is_browser_page(path: &str) -> bool {
    static PAGES: std::sync::OnceLock<Vec<actix_web::dev::ResourceDef>> =
        std::sync::OnceLock::new();
    PAGES
        .get_or_init(|| {
            table()
                .into_iter()
                .filter(|r| {
                    r.verb == Verb::Get
                        && !matches!(r.caller, Caller::Api | Caller::Engine | Caller::Webhook)
                })
                .filter(|r| !matches!(r.path, "/healthz" | "/robots.txt" | "/sitemap.xml"))
                .filter(|r| !r.path.starts_with("/static/"))
                .map(|r| actix_web::dev::ResourceDef::new(r.path))
                .collect()
        })
        .iter()
        .any(|page| page.is_match(path))
}

/// Whether a guide may link to `path`: a page of the map without parameters, or a planned one.
pub fn is_site_page(path: &str) -> bool {
    PLANNED.contains(&path)
        || table()
            .iter()
            .any(|r| r.verb == Verb::Get && r.path == path && !r.path.contains('{'))
}

/// The paths whose POST checks or hashes a password (the gate's list).
pub fn password_forms() -> Vec<&'static str> {
    table()
        .into_iter()
        .filter(|r| r.password_form)
        .map(|r| r.path)
        .collect()
}

/// Pages of the map listed in the sitemap (guides are added by the sitemap itself).
pub fn sitemap_paths() -> Vec<&'static str> {
    table()
        .into_iter()
        .filter(|r| r.sitemap)
        .map(|r| r.path)
        .collect()
}

/// robots.txt's `Disallow` lines: the first segment of each private route (`/compte`), with a
/// parameter as `*` (`/aide/*/avis`); the API as a whole; the planned pages.
pub fn disallowed() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |rule: String| {
        if !out.contains(&rule) {
            out.push(rule);
        }
    };
    for route in table().iter().filter(|r| r.private) {
        let rule = if route.caller == Caller::Api {
            "/api/".to_owned()
        } else if route.path.starts_with("/aide/") {
            route
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "*" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        } else {
            let first = route.path.split('/').nth(1).unwrap_or_default();
            format!("/{first}")
        };
        add(rule);
    }
    for path in PLANNED {
        let first = path.split('/').nth(1).unwrap_or_default();
        add(format!("/{first}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_listed_once() {
        let table = table();
        for (i, a) in table.iter().enumerate() {
            for b in &table[i + 1..] {
                assert!(
                    !(a.verb == b.verb && a.path == b.path),
                    "{:?} {} twice",
                    a.verb,
                    a.path
                );
            }
        }
    }

    #[test]
    fn callers_and_paths_agree() {
        for route in table() {
            match route.caller {
                Caller::Api | Caller::Staff | Caller::Engine | Caller::Webhook => {
                    assert!(
                        route.path.starts_with(route.caller.prefix()),
                        "{} outside its scope",
                        route.path
                    );
                    if route.caller == Caller::Api {
                        assert!(
                            !route.path.starts_with(Caller::Engine.prefix()),
                            "{} is the engine's",
                            route.path
                        );
                    }
                }
                Caller::Shared | Caller::Public => {
                    assert_eq!(route.verb, Verb::Get, "{} changes state", route.path)
                }
                Caller::Browser => assert!(
                    !route.path.starts_with("/api/") && !route.path.starts_with("/admin"),
                    "{} is a browser page under another caller's prefix",
                    route.path
                ),
            }
        }
    }

    #[test]
    fn cookieless_routes_are_browser_pages_read_with_get_at_a_fixed_path() {
        let cookieless: Vec<Route> = table().into_iter().filter(|r| r.cookieless).collect();
        assert!(!cookieless.is_empty());
        for route in cookieless {
            assert_eq!(route.verb, Verb::Get, "{} changes state", route.path);
            assert_eq!(route.caller, Caller::Browser, "{}", route.path);
            // The scope's guard compares the path as it is: no `{parameter}`.
            assert!(!route.path.contains('{'), "{}", route.path);
        }
    }

    #[test]
    fn robots_keep_crawlers_off_private_pages() {
        let rules = disallowed();
        for expected in [
            "/compte",
            "/tableau-de-bord",
            "/admin",
            "/api/",
            "/aide/*/avis",
            "/achats",
            "/abonnement",
            "/credits",
            "/generations",
        ] {
            assert!(
                rules.iter().any(|r| r == expected),
                "{expected} in {rules:?}"
            );
        }
        assert!(!rules.iter().any(|r| r == "/aide" || r == "/"), "{rules:?}");
    }

    #[test]
    fn the_planned_pages_are_not_routes_yet() {
        println!("planned paths (no route yet): {PLANNED:?}");
        for path in PLANNED {
            assert!(
                !table().iter().any(|r| r.path == *path),
                "{path} has a route: take it off PLANNED"
            );
        }
    }
}

//! Random input to the simulator's two handlers: never a 500, always a verdict or a 400.

use proptest::prelude::*;

use crate::common::spawn_app;

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(String::new())),
        prop::sample::select(vec![
            "video",
            "image",
            "musique",
            "mini-livre",
            "VIDEO",
            "4k",
            "hd",
            "16:9",
            "9:16",
            "1920x1080",
            "riches",
            "eglise",
            "reseau",
            "0",
            "5",
            "15",
            "90",
            "500",
            "501",
            "-1",
            "1e3",
            "10.5"
        ])
        .prop_map(|s| Some(s.to_owned())),
        "\\PC{0,30}".prop_map(Some),
        any::<u64>().prop_map(|n| Some(n.to_string())),
        "[\\x00-\\x1f\\u{202e}\\u{1f600}a-z]{0,12}".prop_map(Some),
    ]
}

#[test]
fn random_simulator_input_never_breaks_either_handler() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let names = [
        "type",
        "duree",
        "format",
        "resolution",
        "pages",
        "illustrations",
        "quantite",
        "plan",
        "prompt",
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 150,
        ..ProptestConfig::default()
    });
    let strategy = prop::collection::vec(value(), names.len());
    runner
        .run(&strategy, |values| {
            let pairs: Vec<(&str, String)> = names
                .iter()
                .zip(values)
                .filter_map(|(n, v)| v.map(|v| (*n, v)))
                .collect();
            let query = serde_urlencoded::to_string(&pairs).unwrap();
            for path in ["/simulateur", "/api/v1/simulateur"] {
                let status = runtime.block_on(async {
                    app.get(&format!("{path}?{query}")).await.status().as_u16()
                });
                prop_assert!(
                    status == 200 || status == 400,
                    "{path}?{query} answered {status}"
                );
            }
            Ok(())
        })
        .unwrap();
    runtime.block_on(app.stop());
}

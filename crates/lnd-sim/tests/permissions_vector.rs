//! lnd-sim's embedded permission table must equal LND's (vectors/go/lnd_permissions.json).

#![allow(clippy::unwrap_used, missing_docs)]

use lnc_testkit::dirs::vectors_dir;

#[test]
fn served_permissions_match_lnd() {
    let path = vectors_dir().join("lnd_permissions.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("vector {} missing: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lookup = |method: &str| -> Option<serde_json::Value> {
        if let Some(ops) = v["methods"].get(method) {
            return Some(ops.clone());
        }
        v["subservers"]
            .as_object()?
            .values()
            .find_map(|s| s["methods"].get(method).cloned())
    };
    for (method, ops) in lnd_sim::perms::SERVED_PERMISSIONS {
        let want = lookup(method).unwrap_or_else(|| panic!("{method} not in LND's table"));
        let want: Vec<(String, String)> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["entity"].as_str().unwrap().to_owned(),
                    o["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let got: Vec<(String, String)> = ops
            .iter()
            .map(|(e, a)| ((*e).to_owned(), (*a).to_owned()))
            .collect();
        assert_eq!(got, want, "{method}");
    }
    // The entities BakeMacaroon accepts are exactly those of LND's read permissions.
    let entities: Vec<&str> = v["read_permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["entity"].as_str().unwrap())
        .collect();
    let mut ours = lnd_sim::perms::VALID_ENTITIES.to_vec();
    let mut theirs = entities.clone();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
}

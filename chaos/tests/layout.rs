//! The layout holds its rule (DESIGN.md, "How is the tree laid out, and which way do
//! dependencies point?"): crates depend one way, elector at the bottom, then reports, scenarios,
//! sim, and chaos on top; neither reports nor scenarios has the simulator among its
//! dependencies; and inside every crate, sibling modules reference each other without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Each workspace crate and the workspace crates it may depend on (normal, dev and build).
const ALLOWED: [(&str, &[&str]); 5] = [
    ("khaos-elector", &[]),
    ("khaos-reports", &["khaos-elector"]),
    ("khaos-scenarios", &["khaos-elector", "khaos-reports"]),
    (
        "khaos-sim",
        &["khaos-elector", "khaos-reports", "khaos-scenarios"],
    ),
    (
        "khaos",
        &[
            "khaos-elector",
            "khaos-reports",
            "khaos-scenarios",
            "khaos-sim",
        ],
    ),
];

/// Crates that must not reach these, however indirectly (normal dependencies).
const FORBIDDEN: [(&str, &[&str]); 2] = [
    ("khaos-reports", &["turmoil", "khaos-sim"]),
    ("khaos-scenarios", &["turmoil", "khaos-sim"]),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("chaos/ sits in the workspace")
        .to_path_buf()
}

fn metadata() -> Value {
    let host = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn crates_depend_one_way_and_reports_and_scenarios_have_no_simulator() {
    let metadata = metadata();
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let names: BTreeMap<&str, &str> = packages
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for package in packages
        .iter()
        .filter(|p| members.contains(p["id"].as_str().unwrap()))
    {
        let name = package["name"].as_str().unwrap();
        seen.insert(name);
        let Some((_, allowed)) = ALLOWED.iter().find(|(crate_name, _)| *crate_name == name) else {
            problems.push(format!(
                "{name} is not in the layout rule; add it to ALLOWED and DESIGN.md"
            ));
            continue;
        };
        for dependency in package["dependencies"].as_array().unwrap() {
            let on = dependency["name"].as_str().unwrap();
            if on.starts_with("khaos") && !allowed.contains(&on) {
                problems.push(format!(
                    "{name} depends on {on} ({} dependency): dependencies point the other way",
                    dependency["kind"].as_str().unwrap_or("normal")
                ));
            }
        }
    }
    assert_eq!(
        seen.len(),
        ALLOWED.len(),
        "every crate of the rule is a member: {seen:?}"
    );

    // The normal-dependency closure of reports and scenarios.
    let nodes: BTreeMap<&str, Vec<&str>> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let normal = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|kind| kind["kind"].is_null())
                })
                .map(|dep| dep["pkg"].as_str().unwrap())
                .collect();
            (node["id"].as_str().unwrap(), normal)
        })
        .collect();
    for (name, forbidden) in FORBIDDEN {
        let id = names
            .iter()
            .find(|(id, n)| **n == name && members.contains(**id))
            .map(|(id, _)| *id)
            .expect("a member");
        let mut reached = BTreeSet::new();
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if reached.insert(id) {
                stack.extend(nodes[id].iter().copied());
            }
        }
        for id in reached {
            if forbidden.contains(&names[id]) {
                problems.push(format!(
                    "{name} reaches {}: it must judge or describe runs without the simulator",
                    names[id]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A module's path from its file: `src/a.rs` and `src/a/mod.rs` are `a`, `src/a/b.rs` is
/// `a::b`; the crate root is empty.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        path.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        path.pop();
    }
    path
}

fn files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The first identifiers of each path after `prefix` (`crate::a::b` gives `a`;
/// `super::{a, b::c}` gives `a` and `b`).
fn heads_after<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut heads = Vec::new();
    for (at, _) in line.match_indices(prefix) {
        if line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &line[at + prefix.len()..];
        let items: Vec<&str> = match rest.strip_prefix('{') {
            Some(inner) => inner.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for item in items {
            let head = item
                .trim()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            if !head.is_empty() && head != "self" && head != "super" {
                heads.push(head);
            }
        }
    }
    heads
}

#[test]
fn sibling_modules_reference_each_other_without_a_cycle() {
    let mut problems = Vec::new();
    for krate in ["elector", "reports", "scenarios", "sim", "chaos"] {
        let src = root().join(krate).join("src");
        let mut found = Vec::new();
        files(&src, &mut found);
        let modules: BTreeSet<Vec<String>> =
            found.iter().map(|file| module_of(&src, file)).collect();
        // Edges between siblings: (parent, from, to).
        let mut edges: BTreeSet<(Vec<String>, String, String)> = BTreeSet::new();
        for file in &found {
            // Test scaffolding may reach anywhere: the `testing` modules and the `tests` module at
            // the end of a file.
            if file.file_stem().is_some_and(|s| s == "testing") {
                continue;
            }
            let from = module_of(&src, file);
            let text = std::fs::read_to_string(file).unwrap();
            let code = text.split("\n#[cfg(test)]\nmod tests").next().unwrap();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                let mut targets: Vec<Vec<String>> = heads_after(line, "crate::")
                    .into_iter()
                    .map(|head| vec![head.to_owned()])
                    .collect();
                // `super::x` in module `p::m` (`p/m.rs` or `p/m/mod.rs`) names `p::x`.
                let parent = &from[..from.len().saturating_sub(1)];
                for head in heads_after(line, "super::") {
                    let mut target = parent.to_vec();
                    target.push(head.to_owned());
                    targets.push(target);
                }
                for target in targets.into_iter().filter(|t| modules.contains(t)) {
                    let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
                    if common < from.len() && common < target.len() {
                        edges.insert((
                            from[..common].to_vec(),
                            from[common].clone(),
                            target[common].clone(),
                        ));
                    }
                }
            }
        }
        // A cycle: some edge (a -> b) with a path back from b to a under the same parent.
        for (parent, a, b) in &edges {
            let mut reached = BTreeSet::new();
            let mut stack = vec![b.clone()];
            while let Some(m) = stack.pop() {
                if reached.insert(m.clone()) {
                    stack.extend(
                        edges
                            .iter()
                            .filter(|(p, x, _)| p == parent && *x == m)
                            .map(|(_, _, y)| y.clone()),
                    );
                }
            }
            if reached.contains(a) {
                let at = if parent.is_empty() {
                    krate.to_owned()
                } else {
                    format!("{krate}::{}", parent.join("::"))
                };
                problems.push(format!("{at}: {a} -> {b} and {b} reaches {a} again"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "module cycles:\n{}",
        problems.join("\n")
    );
}

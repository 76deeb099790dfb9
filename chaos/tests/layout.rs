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
const FORBIDDEN: [(&str, &[&str]); 3] = [
    ("khaos-elector", &["turmoil", "khaos-sim"]),
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

/// The package ids of the workspace's members.
fn members(metadata: &Value) -> BTreeSet<&str> {
    metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn crates_depend_one_way_and_reports_and_scenarios_have_no_simulator() {
    let metadata = metadata();
    let packages = metadata["packages"].as_array().unwrap();
    let members = members(&metadata);
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

/// `#[cfg(test)]`: test scaffolding may reach anywhere.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .meta
                .require_list()
                .is_ok_and(|list| list.tokens.to_string().contains("test"))
    })
}

/// Every path a file names outside its tests: each `use` tree flattened (`use a::{b, c::d}` gives
/// `a::b` and `a::c::d`, a glob ends in `*`), and every path in code and types. With each, the
/// name it is re-exported as when the `use` is `pub`.
#[derive(Default)]
struct Paths {
    named: Vec<Vec<String>>,
    /// `pub use` paths and the name each is bound to here.
    reexports: Vec<(Vec<String>, String)>,
}

impl Paths {
    fn flatten(&mut self, tree: &syn::UseTree, mut prefix: Vec<String>, public: bool) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.flatten(&path.tree, prefix, public);
            }
            syn::UseTree::Name(name) => {
                let bound = name.ident.to_string();
                if bound != "self" {
                    prefix.push(bound.clone());
                }
                if public {
                    self.reexports.push((prefix.clone(), bound));
                }
                self.named.push(prefix);
            }
            syn::UseTree::Rename(rename) => {
                prefix.push(rename.ident.to_string());
                if public {
                    self.reexports
                        .push((prefix.clone(), rename.rename.to_string()));
                }
                self.named.push(prefix);
            }
            syn::UseTree::Glob(_) => {
                prefix.push("*".into());
                self.named.push(prefix);
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.flatten(tree, prefix.clone(), public);
                }
            }
        }
    }
}

impl<'ast> syn::visit::Visit<'ast> for Paths {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if !is_test(&item.attrs) {
            let public = matches!(item.vis, syn::Visibility::Public(_));
            self.flatten(&item.tree, Vec::new(), public);
        }
    }
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test(&item.attrs) {
            syn::visit::visit_item_fn(self, item);
        }
    }
    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if !is_test(&item.attrs) {
            syn::visit::visit_item_impl(self, item);
        }
    }
    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.named
            .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

/// A module, and the item a path names in it.
type Target = (Vec<String>, Option<String>);

/// The module a path in module `from` reaches, and the item it names there (if any): `crate::`,
/// `self::` and `super::` paths and paths from a child module, resolved through the longest prefix that is a module of the
/// crate. Other paths (other crates, local names) reach no module of this crate.
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Target> {
    let (mut module, rest) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (from.to_vec(), &path[1..]),
        "super" => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            (from[..from.len().checked_sub(ups)?].to_vec(), &path[ups..])
        }
        // A child module, named from its parent (`use checkers::Verdict` in lib.rs).
        child if modules.contains(&[from, &[child.to_owned()]].concat()) => (from.to_vec(), path),
        _ => return None,
    };
    let mut rest = rest.iter();
    let mut item = None;
    for segment in rest.by_ref() {
        let mut deeper = module.clone();
        deeper.push(segment.clone());
        if modules.contains(&deeper) {
            module = deeper;
        } else {
            item = Some(segment.clone());
            break;
        }
    }
    Some((module, item))
}

#[test]
fn sibling_modules_reference_each_other_without_a_cycle() {
    let metadata = metadata();
    let members = members(&metadata);
    let mut problems = Vec::new();
    let mut scanned = 0;
    for package in metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| members.contains(p["id"].as_str().unwrap()))
    {
        let krate = package["name"].as_str().unwrap();
        let src = Path::new(package["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap()
            .join("src");
        let mut found = Vec::new();
        files(&src, &mut found);
        let modules: BTreeSet<Vec<String>> =
            found.iter().map(|file| module_of(&src, file)).collect();
        let mut named: Vec<(Vec<String>, Paths)> = Vec::new();
        for file in &found {
            // The `testing` modules are test scaffolding.
            if file.file_stem().is_some_and(|s| s == "testing") {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            let parsed =
                syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut paths = Paths::default();
            syn::visit::Visit::visit_file(&mut paths, &parsed);
            named.push((module_of(&src, file), paths));
            scanned += 1;
        }
        // Where each module's `pub use` sends a name: (module, name) -> (module, item).
        let mut reexported: BTreeMap<(Vec<String>, String), Target> = BTreeMap::new();
        for (from, paths) in &named {
            for (path, bound) in &paths.reexports {
                if let Some(target) = resolve(from, path, &modules)
                    && target.0 != *from
                {
                    reexported.insert((from.clone(), bound.clone()), target);
                }
            }
        }
        // Edges between siblings: (parent, from, to).
        let mut edges: BTreeSet<(Vec<String>, String, String)> = BTreeSet::new();
        for (from, paths) in &named {
            for path in &paths.named {
                let Some(mut target) = resolve(from, path, &modules) else {
                    continue;
                };
                // Through re-exports to the module that defines the item (a few hops at most).
                for _ in 0..4 {
                    let Some(item) = &target.1 else { break };
                    match reexported.get(&(target.0.clone(), item.clone())) {
                        Some(next) => target = next.clone(),
                        None => break,
                    }
                }
                let target = target.0;
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
    assert!(scanned > 50, "the scan found the sources ({scanned} files)");
    assert!(
        problems.is_empty(),
        "module cycles:\n{}",
        problems.join("\n")
    );
}

//! The shape of the crate, checked: modules import only downward along the data flow, files stay
//! short, the library's errors are typed (no `Result<_, String>`, no `anyhow`), and `main.rs`
//! only dispatches. These read the sources; they need no model and run in milliseconds.

use std::path::{Path, PathBuf};

/// The library's modules in data-flow order; a module may use only those of a lower rank.
/// `batch` and `server` are the two doors and may not use each other; `bench` may use `eval`.
const RANKS: &[(&str, u32)] = &[
    ("models", 0),
    ("onnx", 0),
    ("audio", 1),
    ("speakers", 2),
    ("asr", 2),
    ("transcript", 3),
    ("redact", 4),
    ("text", 5),
    ("analysis", 6),
    ("metrics", 7),
    ("coaching", 8),
    ("store", 9),
    ("delivery", 10),
    ("report", 11),
    ("service", 12),
    ("proto", 13),
    ("api", 14),
    ("batch", 15),
    ("server", 15),
    ("eval", 16),
    ("bench", 17),
];

fn rank(module: &str) -> Option<u32> {
    RANKS.iter().find(|(m, _)| *m == module).map(|&(_, r)| r)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file with its path under `src/` and its text.
fn files() -> Vec<(String, String)> {
    let mut paths = Vec::new();
    sources(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The library module a file belongs to (`None` for the binary's files and `lib.rs`).
fn module_of(rel: &str) -> Option<&str> {
    let first = rel.split('/').next()?;
    let module = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(module, "main" | "lib" | "cli")).then_some(module)
}

#[test]
fn modules_import_only_downward_along_the_data_flow() {
    let mut upward = Vec::new();
    for (rel, text) in files() {
        let Some(module) = module_of(&rel) else {
            continue;
        };
        let own = rank(module).unwrap_or_else(|| panic!("{module} is not in RANKS"));
        for (n, line) in text.lines().enumerate() {
            for used in line.split("crate::").skip(1) {
                let name: String = used
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name == module || name.is_empty() {
                    continue;
                }
                match rank(&name) {
                    Some(r) if r < own || (module == "bench" && name == "eval") => {}
                    Some(_) => upward.push(format!("src/{rel}:{}: {module} uses {name}", n + 1)),
                    None => {} // a macro or an item of lib.rs
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the flow:\n{}",
        upward.join("\n")
    );
}

#[test]
fn files_are_short_unless_they_say_why() {
    let mut long = Vec::new();
    for (rel, text) in files() {
        let lines = text.lines().count();
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with("//"))
            .collect::<Vec<_>>()
            .join(" ");
        if lines > 600 && !header.contains("600 lines") {
            long.push(format!("src/{rel}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "files over 600 lines:\n{}",
        long.join("\n")
    );
    let main = std::fs::read_to_string(src().join("main.rs")).unwrap();
    assert!(
        main.lines().count() <= 150,
        "main.rs only parses and dispatches"
    );
}

#[test]
fn the_library_has_typed_errors() {
    let mut found = Vec::new();
    for (rel, text) in files() {
        let binary = module_of(&rel).is_none();
        for (n, line) in text.lines().enumerate() {
            let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if compact.contains(",String>") && compact.contains("Result<") {
                found.push(format!("src/{rel}:{}: Result<_, String>", n + 1));
            }
            if !binary && line.contains("anyhow") {
                found.push(format!("src/{rel}:{}: anyhow in the library", n + 1));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

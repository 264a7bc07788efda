//! What the Debian package ships that `cargo test` can check: the man pages and shell
//! completions `reminderd generate` writes (packaging/build-deb) cover every command an admin
//! can type, and the generator itself stays out of them.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::common::Env;

/// Every visible command as its path of names (`["user", "add"]`), read from `--help` the way
/// an admin sees it, recursively.
fn commands(env: &Env, prefix: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    args.push("--help");
    let help = env.run(&args).expect(0).stdout;
    let mut found = Vec::new();
    for line in help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
    {
        let name = line.split_whitespace().next().expect("a command name");
        if name == "help" {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(name.to_string());
        found.extend(commands(env, &path));
        found.push(path);
    }
    found
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_man_page_for_every_command_and_none_for_the_generator() {
    let env = Env::new();
    let dir = env.path("man");
    env.run(&["generate", "man", dir.to_str().expect("utf-8 path")])
        .expect(0);
    let all = commands(&env, &[]);
    assert!(all.len() > 20, "too few commands read from --help: {all:?}");
    let pages: BTreeSet<String> = fs::read_dir(&dir)
        .expect("man folder")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    let mut expected: BTreeSet<String> = all
        .iter()
        .map(|path| format!("reminderd-{}.1", path.join("-")))
        .collect();
    expected.insert("reminderd.1".to_string());
    assert_eq!(pages, expected);

    let top = read(&dir.join("reminderd.1"));
    assert!(
        top.starts_with(".ie"),
        "not roff: {}",
        &top[..80.min(top.len())]
    );
    assert!(top.contains(".TH reminderd 1"), "not a section-1 page");
    for path in all.iter().filter(|p| p.len() == 1) {
        assert!(
            top.contains(&format!("reminderd\\-{}(1)", path[0].replace('-', "\\-"))),
            "reminderd(1) does not list {}",
            path[0]
        );
    }
    assert!(
        !top.contains("generate"),
        "the hidden generator is documented"
    );
    // A subcommand's page carries its own options.
    let import = read(&dir.join("reminderd-import.1"));
    assert!(import.contains("\\-\\-clinic"), "{import}");
}

#[test]
fn completions_for_bash_zsh_and_fish_offer_every_command() {
    let env = Env::new();
    let dir = env.path("completions");
    env.run(&["generate", "completions", dir.to_str().expect("utf-8 path")])
        .expect(0);
    let all = commands(&env, &[]);
    for file in ["reminderd.bash", "_reminderd", "reminderd.fish"] {
        let script = read(&dir.join(file));
        for path in &all {
            let name = path.last().expect("a name");
            assert!(
                script.contains(name.as_str()),
                "{file} does not offer {path:?}"
            );
        }
        assert!(
            !script.contains("generate"),
            "{file} offers the hidden generator"
        );
        // Options come from the clap definitions too (fish spells `--clinic` as `-l clinic`).
        let clinic = if file == "reminderd.fish" {
            "-l clinic"
        } else {
            "--clinic"
        };
        assert!(script.contains(clinic), "{file} lacks import's --clinic");
    }
}

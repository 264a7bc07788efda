//! Front-desk staff accounts: add, passwd, disable, enable, remove, list, role.

use std::path::Path;

use anyhow::Result;

use reminderd::time::Clock;

use super::{UserCommand, exit, fail, open};

pub(super) fn run(config_path: &Path, db: Option<&Path>, command: UserCommand) -> Result<u8> {
    let (_, mut store) = open(config_path, db)?;
    let now = Clock::System.now();
    // Who changed an account, for the audit log (staff are `staff:<name>`).
    let actor = super::admin_actor();
    let no_such = |name: &str| {
        fail(
            exit::DATA,
            format!("there is no user {name:?}; `reminderd user list` shows them"),
        )
    };
    match command {
        UserCommand::Add { name, role } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(fail(
                    exit::USAGE,
                    "a user name is 1 to 64 characters without control characters",
                ));
            }
            let hash = new_password(&name)?;
            if !store.add_staff(&name, &hash, role, now)? {
                return Err(fail(
                    exit::DATA,
                    format!(
                        "there is already a user {name:?}; use `reminderd user passwd {name}` to change the password"
                    ),
                ));
            }
            println!("user {name} added as {role}; they can sign in at the front desk");
        }
        UserCommand::Passwd { name } => {
            if store.staff_login(&name)?.is_none() {
                return Err(no_such(&name));
            }
            let hash = new_password(&name)?;
            store.set_staff_password(&name, &hash, &actor, now)?;
            println!("password of {name} changed; any lock-out is lifted and old sign-ins end");
        }
        UserCommand::Disable { name } => {
            match store.set_staff_disabled(&name, true, &actor, now)? {
                None => return Err(no_such(&name)),
                Some(true) => println!(
                    "{name} is disabled: signed out everywhere and refused at sign-in (`reminderd user enable {name}` undoes it)"
                ),
                Some(false) => println!("{name} was already disabled; nothing changed"),
            }
        }
        UserCommand::Enable { name } => {
            match store.set_staff_disabled(&name, false, &actor, now)? {
                None => return Err(no_such(&name)),
                Some(true) => println!("{name} is enabled and can sign in again"),
                Some(false) => println!("{name} was not disabled; nothing changed"),
            }
        }
        UserCommand::Remove { name } => match store.remove_staff(&name, &actor, now)? {
            None => return Err(no_such(&name)),
            Some(stored) => println!(
                "{stored} is removed: signed out everywhere; the audit log keeps what they did"
            ),
        },
        UserCommand::Role { name, role } => {
            match store.set_staff_role(&name, role, &actor, now)? {
                None => return Err(no_such(&name)),
                Some(true) => println!(
                    "{name} is now {role}; their sign-ins ended, the role holds from their next sign-in"
                ),
                Some(false) => println!("{name} was already {role}; nothing changed"),
            }
        }
        UserCommand::List => {
            let users = store.staff(now)?;
            let roles: std::collections::HashMap<String, reminderd::model::Role> =
                store.staff_roles()?.into_iter().collect();
            if users.is_empty() {
                println!("no users; add one with `reminderd user add NAME`");
            }
            for u in users {
                let state = match (u.disabled_at, u.locked_until) {
                    (Some(t), _) => format!("disabled since {}", t.format("%Y-%m-%d")),
                    (None, Some(t)) => format!(
                        "sign-in paused until {} UTC after wrong passwords",
                        t.format("%Y-%m-%d %H:%M")
                    ),
                    (None, None) => "active".to_string(),
                };
                let role = roles
                    .get(&u.name)
                    .copied()
                    .unwrap_or(reminderd::model::Role::Staff);
                println!(
                    "{}  ({state}, added {}), {role}",
                    u.name,
                    u.created_at.format("%Y-%m-%d")
                );
            }
        }
    }
    Ok(exit::OK)
}

/// Asks twice on a terminal; otherwise reads one line from standard input (for scripts).
fn new_password(name: &str) -> Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            return Err(fail(
                exit::USAGE,
                "the two passwords differ; nothing changed",
            ));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    reminderd::desk::auth::hash_password(&password).map_err(|e| fail(exit::USAGE, e.to_string()))
}

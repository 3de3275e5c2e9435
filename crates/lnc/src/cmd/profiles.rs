//! `lnc profiles`: list and remove saved credentials.

use clap::Subcommand;

/// `lnc profiles` subcommands.
#[derive(Subcommand, Debug)]
pub enum ProfilesCommand {
    /// Lists saved profiles (no password needed).
    List,
    /// Deletes a profile.
    Remove {
        /// The profile name.
        name: String,
    },
}

/// `lnc profiles`.
pub async fn run(cmd: ProfilesCommand) -> anyhow::Result<()> {
    let store = super::connect::store()?;
    match cmd {
        ProfilesCommand::List => {
            let names = store.list()?;
            if names.is_empty() {
                eprintln!("lnc: no profiles in {}", store.dir().display());
            }
            for n in names {
                match store.load_sealed(&n) {
                    Ok(env) => {
                        let exp = env
                            .info
                            .expiry
                            .and_then(|s| {
                                lnc_core::macaroon::UnixTime::from_secs(s).to_rfc3339_nano()
                            })
                            .unwrap_or_else(|| "never".into());
                        println!(
                            "{n}\tmailbox={}\tnode={}\texpires={exp}",
                            env.info.mailbox, env.info.node_pubkey
                        );
                    }
                    Err(e) => println!("{n}\t(unreadable: {e})"),
                }
            }
        }
        ProfilesCommand::Remove { name } => {
            if store.remove(&name)? {
                eprintln!("lnc: removed profile {name:?}");
            } else {
                anyhow::bail!("no profile named {name:?} in {}", store.dir().display());
            }
        }
    }
    Ok(())
}

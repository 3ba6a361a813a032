//! `switchboard add LIBRARY` and `switchboard remove NAME`: the operator's "drop a plugin
//! in, declare it" in one step, and its undo. The manifest keeps its comments and layout
//! (toml_edit), and is written only if the result validates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use switchboard::load::{inspect, sha256_of, LibraryReport};
use switchboard::manifest::builtin::is_builtin;
use switchboard::manifest::library_file_name;
use switchboard::{Manifest, ValidManifest};
use toml_edit::{value, DocumentMut, Item, Table};

use crate::cli::{exit, Cli};

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The plugin library to add (`libNAME.so`, `NAME.dll`, `libNAME.dylib`).
    pub library: PathBuf,

    /// The plugin's name in the manifest [default: the plugin's own name].
    #[arg(long)]
    pub name: Option<String>,

    /// Config for the plugin's init, as `key=value` (values are TOML: `5`, `true`,
    /// `"text"`; anything else is taken as a string). Repeat for several keys.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The plugin's name in the manifest.
    pub name: String,
}

/// The events a library handles or emits that the manifest does not declare, with the
/// arguments the library says they carry: an emitted event's declared arguments, or the
/// arguments its typed callbacks read (a callback that reads by name says nothing).
fn undeclared_events(
    report: &LibraryReport,
    manifest: &ValidManifest,
) -> Vec<(String, Vec<(String, String)>)> {
    let mut events: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let emitted = report.emits.iter().map(|e| (&e.event, Some(&e.args)));
    let handled = report
        .registrations
        .iter()
        .map(|r| (&r.event, r.reads.as_ref()));
    for (event, args) in emitted.chain(handled) {
        if is_builtin(event) || manifest.events().iter().any(|e| e.name == *event) {
            continue;
        }
        let index = match events.iter().position(|(e, _)| e == event) {
            Some(index) => index,
            None => {
                events.push((event.clone(), Vec::new()));
                events.len() - 1
            }
        };
        for (arg, kind) in args.into_iter().flatten() {
            let known = &mut events[index].1;
            if !known.iter().any(|(a, _)| a == arg) {
                known.push((arg.clone(), kind.clone()));
            }
        }
    }
    events
}

/// The `doc` of an event `add` declared for a plugin, so that `remove` can take it back.
fn declared_by(plugin: &str) -> String {
    format!("declared by `switchboard add` for plugin {plugin}")
}

pub fn add(cli: &Cli, args: &AddArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let report = inspect(&args.library)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| report.info.name.clone());
    if manifest.plugin(&name).is_some() {
        bail!(
            "the manifest already has a plugin named `{name}`; give another with --name, or `switchboard remove {name}` first"
        );
    }

    // Into the plugin folder, under the file name the manifest entry resolves to.
    let folder = manifest.plugin_dir();
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create the plugin folder {}", folder.display()))?;
    let destination = folder.join(library_file_name(&name));
    let hash = sha256_of(&report.path)
        .with_context(|| format!("cannot read {}", report.path.display()))?;
    if destination.exists() && !same_file(&destination, &report.path) {
        if sha256_of(&destination).ok().as_deref() != Some(hash.as_str()) {
            bail!(
                "{} already exists with other content; remove it, or add this library under another --name",
                destination.display()
            );
        }
    } else if !destination.exists() {
        std::fs::copy(&report.path, &destination).with_context(|| {
            format!(
                "cannot copy {} to {}",
                report.path.display(),
                destination.display()
            )
        })?;
    }

    let mut doc: DocumentMut = manifest.source().parse()?;
    let mut declared = Vec::new();
    for (event, args) in undeclared_events(&report, &manifest) {
        let events = doc
            .entry("events")
            .or_insert_with(|| {
                let mut table = Table::new();
                table.set_implicit(true);
                Item::Table(table)
            })
            .as_table_mut()
            .context("`events` in the manifest is not a table")?;
        let mut table = Table::new();
        table["doc"] = value(declared_by(&name));
        if !args.is_empty() {
            let mut types = toml_edit::InlineTable::new();
            for (arg, kind) in &args {
                types.insert(arg, kind.as_str().into());
            }
            table["args"] = value(types);
        }
        events.insert(&event, Item::Table(table));
        declared.push(event);
    }

    let mut entry = Table::new();
    entry["name"] = value(name.as_str());
    entry["sha256"] = value(hash.as_str());
    if !args.config.is_empty() {
        let mut config = toml_edit::InlineTable::new();
        for pair in &args.config {
            let Some((key, text)) = pair.split_once('=') else {
                bail!("--config `{pair}` is not KEY=VALUE");
            };
            config.insert(key.trim(), config_value(text));
        }
        entry["config"] = value(config);
    }
    doc.entry("plugins")
        .or_insert_with(|| Item::ArrayOfTables(Default::default()))
        .as_array_of_tables_mut()
        .context("`plugins` in the manifest is not an array of tables ([[plugins]])")?
        .push(entry);

    write_checked(manifest.path(), &doc.to_string())?;
    println!(
        "added plugin `{name}` ({} {}): {} (sha256 {})",
        report.info.name,
        report.info.version,
        destination.display(),
        &hash[..12]
    );
    for event in &declared {
        println!(
            "declared event `{event}`; give it its arguments in {} (args = {{ ... }})",
            manifest.path().display()
        );
    }
    Ok(exit::ok())
}

pub fn remove(cli: &Cli, args: &RemoveArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let Some(entry) = manifest.plugin(&args.name) else {
        let names: Vec<&str> = manifest.plugins().iter().map(|p| p.name.as_str()).collect();
        bail!(
            "the manifest has no plugin named `{}`; it has: {}",
            args.name,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
    };
    let library = entry.library.clone();
    let shared = manifest
        .plugins()
        .iter()
        .any(|p| p.name != args.name && p.library == library);

    let mut doc: DocumentMut = manifest.source().parse()?;
    if let Some(plugins) = doc
        .get_mut("plugins")
        .and_then(Item::as_array_of_tables_mut)
    {
        plugins.retain(|t| t.get("name").and_then(Item::as_str) != Some(args.name.as_str()));
    }
    let marker = declared_by(&args.name);
    let mut undeclared = Vec::new();
    if let Some(events) = doc.get_mut("events").and_then(Item::as_table_mut) {
        let added: Vec<String> = events
            .iter()
            .filter(|(_, e)| e.get("doc").and_then(Item::as_str) == Some(marker.as_str()))
            .map(|(name, _)| name.to_owned())
            .collect();
        for event in added {
            events.remove(&event);
            undeclared.push(event);
        }
    }
    write_checked(manifest.path(), &doc.to_string())?;

    // The library goes too if `add` put it in the plugin folder and no entry still uses it.
    let in_folder = library.parent() == Some(manifest.plugin_dir());
    if in_folder && !shared && !entry.explicit_path && library.exists() {
        std::fs::remove_file(&library)
            .with_context(|| format!("cannot remove {}", library.display()))?;
        println!("removed plugin `{}` and {}", args.name, library.display());
    } else {
        println!(
            "removed plugin `{}` (its library stays: {})",
            args.name,
            library.display()
        );
    }
    for event in &undeclared {
        println!("removed event `{event}`, which `switchboard add` had declared for it");
    }
    Ok(exit::ok())
}

/// A config value as TOML when it reads as one (`5`, `true`, `"x"`, `[1, 2]`), else text.
fn config_value(text: &str) -> toml_edit::Value {
    text.trim()
        .parse::<toml_edit::Value>()
        .unwrap_or_else(|_| toml_edit::Value::from(text))
}

/// Writes an edited manifest's text to `path` only if it validates, through a temporary
/// file and a rename, so that a failure leaves the old manifest as it was. Every command
/// that edits the manifest (`add`, `remove`, `check --pin --write`) writes through here.
pub fn write_checked(path: &Path, text: &str) -> anyhow::Result<()> {
    Manifest::parse(text, path)
        .and_then(Manifest::validate)
        .context("the edited manifest would not be valid; nothing was changed")?;
    let temporary = path.with_extension("toml.switchboard-new");
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

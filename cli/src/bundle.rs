//! `switchboard bundle DIR`: a folder to copy to another machine of the same platform and
//! run there: this `switchboard` binary, the manifest's plugin libraries in `plugins/`, and
//! the manifest pointing at them, every library pinned by its sha256.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use switchboard::load::{library_file, sha256_of};
use switchboard::manifest::library_file_name;
use switchboard::Manifest;
use toml_edit::{value, DocumentMut, Item};

use crate::cli::{exit, Cli};

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// The folder to create (it must not exist yet, or be empty).
    pub folder: PathBuf,
}

pub fn run(cli: &Cli, args: &BundleArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::load_valid(&cli.manifest)?;
    let out = &args.folder;
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_some()
    {
        bail!("{} is not empty; give a new folder", out.display());
    }
    let plugins = out.join("plugins");
    std::fs::create_dir_all(&plugins)
        .with_context(|| format!("cannot create {}", plugins.display()))?;

    let mut doc: DocumentMut = manifest.source().parse()?;
    let host = doc
        .entry("host")
        .or_insert_with(|| Item::Table(Default::default()))
        .as_table_mut()
        .context("`host` in the manifest is not a table")?;
    // Assigned in place, so that a comment above the key stays.
    host["plugin_dir"] = value("plugins");
    let tables = doc
        .get_mut("plugins")
        .and_then(Item::as_array_of_tables_mut);
    let mut copied = 0;
    if let Some(tables) = tables {
        for (entry, table) in manifest.plugins().iter().zip(tables.iter_mut()) {
            // The same checks as loading: a bundle carries nothing the host would refuse.
            let source = library_file(entry, manifest.plugin_dir())?;
            // A library named by `path` travels under its plugin's name.
            let destination = if entry.explicit_path {
                table.remove("path");
                plugins.join(library_file_name(&entry.name))
            } else {
                plugins.join(entry.library.file_name().unwrap_or_default())
            };
            if !destination.exists() {
                std::fs::copy(&source, &destination).with_context(|| {
                    format!(
                        "cannot copy {} to {}",
                        source.display(),
                        destination.display()
                    )
                })?;
                copied += 1;
            }
            table["sha256"] = value(sha256_of(&destination)?);
        }
    }
    let manifest_out = out.join("events.toml");
    let text = doc.to_string();
    Manifest::parse(&text, &manifest_out)
        .and_then(Manifest::validate)
        .context("the bundled manifest would not be valid")?;
    std::fs::write(&manifest_out, text)
        .with_context(|| format!("cannot write {}", manifest_out.display()))?;

    let binary = std::env::current_exe().context("cannot find this switchboard binary")?;
    let binary_out = out.join(binary.file_name().unwrap_or_default());
    std::fs::copy(&binary, &binary_out)
        .with_context(|| format!("cannot copy {}", binary.display()))?;

    println!(
        "bundled {} ({} plugin librar{}, pinned) into {}; run it there with: cd {} && ./{} check",
        manifest.path().display(),
        copied,
        if copied == 1 { "y" } else { "ies" },
        out.display(),
        out.display(),
        binary_out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    Ok(exit::ok())
}

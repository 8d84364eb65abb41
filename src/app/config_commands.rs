//! The configuration commands: `cch export` and `cch import FILE` (the file format is
//! `domain::config_bundle`; the matching rules are in `config_transfer`).

use anyhow::Context;

use super::config::Settings;

/// `cch export`: writes the configuration (providers with their secrets, users, key hashes,
/// prices, error rules, settings, sensitive words) as JSON to stdout.
pub async fn export_config(settings: Settings) -> anyhow::Result<()> {
    super::wiring::init_crypto();
    let stores = super::wiring::open_stores(&settings, settings.auto_migrate).await?;
    let mut bundle = super::config_transfer::export(stores.config.as_ref())
        .await
        .context("cannot read the configuration")?;
    super::config_transfer::export_sensitive_words(stores.sensitive_words.as_ref(), &mut bundle)
        .await
        .context("cannot read the sensitive words")?;
    println!("{}", serde_json::to_string_pretty(&bundle)?);
    Ok(())
}

/// `cch import FILE [--dry-run]`: applies a file written by `cch export` (`-` reads stdin).
pub async fn import_config(settings: Settings, file: &str, dry_run: bool) -> anyhow::Result<()> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    let bundle: crate::domain::config_bundle::ConfigBundle = serde_json::from_str(&text)
        .with_context(|| format!("{file} is not a cch configuration"))?;
    bundle.check_version().map_err(anyhow::Error::msg)?;
    apply_bundle(&settings, &bundle, dry_run, &[]).await
}

/// Applies a bundle to the database named by the settings and prints the report (and what
/// could not be mapped, for an import from the original).
pub(crate) async fn apply_bundle(
    settings: &Settings,
    bundle: &crate::domain::config_bundle::ConfigBundle,
    dry_run: bool,
    unmapped: &[String],
) -> anyhow::Result<()> {
    super::wiring::init_crypto();
    // Migrations run in a dry run too (as `cch serve` would): they write no configuration, and
    // an empty target database then reads as an empty configuration.
    let stores = super::wiring::open_stores(settings, settings.auto_migrate).await?;
    let mut report =
        super::config_transfer::apply(stores.config.as_ref(), bundle, dry_run, chrono::Utc::now())
            .await
            .context("cannot read the target configuration")?;
    super::config_transfer::apply_sensitive_words(
        stores.sensitive_words.as_ref(),
        bundle,
        dry_run,
        &mut report,
    )
    .await
    .context("cannot read the target's sensitive words")?;
    if dry_run {
        println!("dry run: nothing was written ({})", stores.backend);
    }
    print!("{}", report.render(dry_run));
    if !unmapped.is_empty() {
        println!("\ncannot be mapped ({}):", unmapped.len());
        for line in unmapped {
            println!("  {line}");
        }
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} entities were refused", report.failed.len());
    }
    Ok(())
}

//! `raygate certs generate`: a CA and a serving certificate for the webhook Service.

use crate::certs;
use clap::{Args, Subcommand};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CertsCommand {
    /// Write ca.crt, ca.key, tls.crt, tls.key and print the caBundle (base64 of ca.crt).
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Service name of the webhook.
    #[arg(long, default_value = "raygate-webhook")]
    pub service: String,
    /// Namespace of the Service.
    #[arg(long, default_value = "raygate-system")]
    pub namespace: String,
    /// Output directory.
    #[arg(long, default_value = "certs")]
    pub out: PathBuf,
    /// Extra DNS SANs.
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// IP SANs (127.0.0.1 is always included).
    #[arg(long = "ip")]
    pub ip: Vec<IpAddr>,
    /// Serving certificate validity, days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// CA validity, days.
    #[arg(long, default_value_t = 3650)]
    pub ca_days: u32,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

fn write(path: &Path, contents: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())
}

/// Writes the files; returns the caBundle.
pub fn generate(args: &GenerateArgs) -> Result<String, String> {
    let mut dns = certs::service_dns_names(&args.service, &args.namespace);
    dns.push("localhost".into());
    dns.extend(args.dns.iter().cloned());
    let mut ips = vec![IpAddr::from([127, 0, 0, 1])];
    ips.extend(args.ip.iter().copied());
    let g = certs::generate(&args.service, &dns, &ips, args.ca_days, args.days)
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let files = [
        ("ca.crt", g.ca_cert_pem.as_str(), false),
        ("ca.key", g.ca_key_pem.as_str(), true),
        ("tls.crt", g.cert_pem.as_str(), false),
        ("tls.key", g.key_pem.as_str(), true),
    ];
    if !args.force {
        for (name, _, _) in &files {
            let p = args.out.join(name);
            if p.exists() {
                return Err(format!("{} exists; pass --force to overwrite", p.display()));
            }
        }
    }
    for (name, contents, private) in files {
        let p = args.out.join(name);
        write(&p, contents, private).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(g.ca_bundle())
}

pub fn run(args: CertsArgs) -> ExitCode {
    match args.command {
        CertsCommand::Generate(g) => match generate(&g) {
            Ok(bundle) => {
                eprintln!(
                    "wrote {}/{{ca.crt,ca.key,tls.crt,tls.key}} for {}.{}.svc; caBundle:",
                    g.out.display(),
                    g.service,
                    g.namespace
                );
                println!("{bundle}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

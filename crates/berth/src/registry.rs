//! `berth registry`: the OCI distribution registry server and its gc.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_registry::server::{self, Auth, Config, Htpasswd, Registry, TokenIssuer, gc};
use clap::Subcommand;

/// The exit code of berth's own errors.
const EXIT_ERROR: u8 = 125;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve an OCI distribution (v1.1) registry.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5000")]
        addr: SocketAddr,
        /// Directory holding the registry's blobs and repositories.
        #[arg(long, default_value = "/var/lib/berth/registry")]
        root: PathBuf,
        /// Require HTTP basic auth from the users of this htpasswd file
        /// (bcrypt hashes, as `htpasswd -B` writes).
        #[arg(long, value_name = "FILE")]
        htpasswd: Option<PathBuf>,
        /// Issue bearer tokens at /token to the htpasswd users and require
        /// them, as Docker Hub does (needs --htpasswd).
        #[arg(long, requires = "htpasswd")]
        token_auth: bool,
        /// With --token-auth: let clients without credentials pull.
        #[arg(long, requires = "token_auth")]
        anonymous_pull: bool,
        /// With --token-auth: the token endpoint's URL to announce (behind
        /// a proxy); default: this server's /token as the client reached it.
        #[arg(long, requires = "token_auth", value_name = "URL")]
        token_realm: Option<String>,
        /// Serve HTTPS with this PEM certificate chain.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Remove blobs that no manifest references.
    Gc {
        /// Directory holding the registry's blobs and repositories.
        #[arg(long, default_value = "/var/lib/berth/registry")]
        root: PathBuf,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Keep blobs linked within this many seconds (pushes in flight).
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        grace: u64,
    },
}

pub fn main(command: RegistryCommand) -> ExitCode {
    let result = match command {
        RegistryCommand::Serve {
            addr,
            root,
            htpasswd,
            token_auth,
            anonymous_pull,
            token_realm,
            tls_cert,
            tls_key,
        } => serve(
            addr,
            root,
            htpasswd,
            (token_auth, anonymous_pull, token_realm),
            tls_cert.zip(tls_key),
        ),
        RegistryCommand::Gc {
            root,
            dry_run,
            grace,
        } => collect(root, dry_run, grace),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth registry: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn serve(
    addr: SocketAddr,
    root: PathBuf,
    htpasswd: Option<PathBuf>,
    (token_auth, anonymous_pull, token_realm): (bool, bool, Option<String>),
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<(), String> {
    let auth = match htpasswd {
        None => Auth::None,
        Some(path) => {
            let users = Htpasswd::load(&path)?;
            if token_auth {
                let mut issuer = TokenIssuer::new(users, anonymous_pull);
                issuer.realm = token_realm;
                Auth::Token(issuer)
            } else {
                Auth::Basic(users)
            }
        }
    };
    let tls = tls
        .map(|(cert, key)| berth_registry::tls::server_config(&cert, &key))
        .transpose()?;
    let registry = Registry::open(Config {
        root: root.clone(),
        auth,
    })
    .map_err(|e| format!("open registry storage {}: {e}", root.display()))?;
    crate::raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("listen on {addr}: {e}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!(
            "berth registry: serving {scheme}://{local} from {}",
            root.display()
        );
        server::serve(listener, registry, tls, crate::terminated())
            .await
            .map_err(|e| e.to_string())
    })
}

fn collect(root: PathBuf, dry_run: bool, grace: u64) -> Result<(), String> {
    let options = gc::GcOptions {
        dry_run,
        grace: std::time::Duration::from_secs(grace),
        ..gc::GcOptions::default()
    };
    let report = gc::collect(&root, &options).map_err(|e| e.to_string())?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for (digest, size) in &report.blobs {
        println!("{verb} {digest} ({size} bytes)");
    }
    println!(
        "{} referenced blobs kept; {verb} {} blobs ({} bytes) and {} stale uploads",
        report.referenced,
        report.blobs.len(),
        report.bytes(),
        report.uploads
    );
    Ok(())
}

//! `store` and `serve`: the embedded store and the relay, run until Ctrl+C.

use super::*;

pub(super) async fn store(conn: &Connection) -> anyhow::Result<bool> {
    let Some(store) = &conn.local_store else {
        bail!("`s3share store` serves the embedded store; it takes no --profile or --endpoint-url");
    };
    eprintln!(
        "embedded store on {} (bucket `{}`, data in {}){}; Ctrl+C stops it",
        store.endpoint(),
        crate::store::DEFAULT_BUCKET,
        store.paths().data_dir.display(),
        if store.serving_here() {
            ""
        } else {
            ", served by another s3share process; this one takes over when it exits"
        }
    );
    store.serve_until_ctrl_c().await;
    // Give in-flight requests a moment to finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(true)
}

pub(super) async fn serve(
    conn: &Connection,
    listen: std::net::SocketAddr,
    public_url: Option<String>,
    secret_file: Option<PathBuf>,
) -> anyhow::Result<bool> {
    let public_url = public_url.filter(|u| !u.is_empty());
    if let Some(url) = &public_url {
        // Checked before binding, as `link --relay` checks it before minting.
        crate::relay::handler::public_hosts(url)?;
    }
    if listen.ip().is_unspecified() && public_url.is_none() {
        // Refused before anything is bound or noted: the default base of the links would be
        // http://0.0.0.0:PORT, which no client can open and the relay itself refuses (421).
        bail!(
            "--listen {listen} answers on every address of this machine, so links need the address teammates reach it by: add --public-url http://THIS-MACHINE:{port} (this machine's name or network address), or listen on 127.0.0.1:{port} for this machine only",
            port = listen.port()
        );
    }
    check_credentials(conn).await?;
    let options = crate::relay::run::RelayOptions {
        listen,
        public_url: public_url.clone(),
        secret_file,
        stream_everything: conn.local_store.is_some(),
        // A relay machine's cores are for the relay: one thread each (see ServerConfig::workers).
        workers: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    let relay = crate::relay::run::start(conn.client.clone(), options).await?;
    let (addr, links_base, secret_path) = (
        relay.local_addr(),
        relay.public_url.clone(),
        relay.secret_path.clone(),
    );
    if let Some(e) = &relay.note_failed {
        eprintln!(
            "warning: cannot note the relay's address beside its secret ({e}); pass --public-url {links_base} to `link --relay`"
        );
    }
    eprintln!(
        "relay on http://{addr} (links: {links_base}; secret in {}); Ctrl+C stops it",
        secret_path.display()
    );
    if conn.local_store.is_some() {
        eprintln!(
            "note: the embedded store listens on 127.0.0.1 only, so this relay streams its files itself instead of redirecting"
        );
    }
    tokio::signal::ctrl_c().await?;
    relay.stop();
    Ok(true)
}

/// Asks storage once whether it takes these credentials, before anything is bound or noted.
/// Otherwise a relay with a wrong secret key starts and answers every link `503 cannot check
/// whether this link was revoked`, for as long as it runs, with the reason only in a log line.
/// Only an answer about the credentials themselves refuses the start: scoped credentials that
/// may not list are normal for a relay (AccessDenied says nothing), and storage that is
/// unreachable now may be reachable later (a warning).
async fn check_credentials(conn: &Connection) -> anyhow::Result<()> {
    let checked = match conn.default_bucket() {
        // The embedded store: its one bucket, one key (it lists no buckets of interest).
        Some(bucket) => crate::relay::index::list_folder_page(&conn.client, bucket, "", None, 1)
            .await
            .map(drop),
        None => conn.client.list_buckets().await.map(drop),
    };
    match checked {
        Ok(()) | Err(Error::AccessDenied { .. }) => Ok(()),
        Err(e) if e.credential_problem().is_some() => Err(e.into()),
        Err(e) => {
            eprintln!("warning: cannot check the relay's credentials now ({e}); starting anyway");
            Ok(())
        }
    }
}

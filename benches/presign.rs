//! Cost of one presigned request: s3share's presigner (cached credentials, bucket target resolved
//! once, plain SigV4) beside the SDK's `.presigned()` per call, against the embedded store.
//!
//! `cargo bench --bench presign` prints nanoseconds per signature. `N=1000000` signs more.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark: a failed unwrap is a failure with its line"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use s3share::s3::{ConnectOptions, PresignOp};
use s3share::store::StorePaths;

const KEY: &str = "ünïcødé/文件 名 + 100% #1?.txt";

fn main() {
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let connection = ConnectOptions {
            local: true,
            store_paths: Some(StorePaths {
                config_dir: dir.path().join("config"),
                data_dir: dir.path().join("data"),
            }),
            ..Default::default()
        }
        .connect()
        .await
        .expect("embedded store starts");
        let client = connection.client.clone();
        let bucket = connection.default_bucket().unwrap();
        let lifetime = Duration::from_secs(300);
        let get = || PresignOp::Get {
            filename: None,
            inline: false,
        };
        let put = || PresignOp::Put {
            content_md5: Some("1B2M2Y8AsgTpgAmY7PhCfg==".into()),
            if_none_match: true,
            content_type: Some("application/pdf".into()),
            content_length: Some(123_456),
        };
        // The first signature resolves the bucket (one request) and the credentials.
        client.presign(bucket, KEY, get(), lifetime).await.unwrap();

        for (name, make) in [
            ("GET", &get as &dyn Fn() -> PresignOp),
            ("PUT+4 headers", &put),
        ] {
            let start = Instant::now();
            for _ in 0..n {
                black_box(client.presign(bucket, KEY, make(), lifetime).await.unwrap());
            }
            let per = start.elapsed().as_nanos() / u128::from(n);
            println!("presigner {name:<14} {per:>8} ns/signature ({n} signatures)");
        }

        // The SDK's own presigning, once per URL, for comparison (fewer: it is slower).
        let store = connection.local_store.as_ref().unwrap();
        let state = store.state();
        let creds = aws_credential_types::Credentials::new(
            state.access_key.clone(),
            state.secret_key.clone(),
            None,
            None,
            "bench",
        );
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(store.endpoint())
            .force_path_style(true)
            .build();
        let sdk = aws_sdk_s3::Client::from_conf(conf);
        let m = (n / 10).max(1);
        let start = Instant::now();
        for _ in 0..m {
            let config = PresigningConfig::expires_in(lifetime).unwrap();
            black_box(
                sdk.get_object()
                    .bucket(bucket)
                    .key(KEY)
                    .presigned(config)
                    .await
                    .unwrap(),
            );
        }
        let per = start.elapsed().as_nanos() / u128::from(m);
        println!("SDK .presigned() GET     {per:>8} ns/signature ({m} signatures)");
    });
}

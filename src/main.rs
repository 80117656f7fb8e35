//! The `s3share` binary: parse the command line, start the runtime, run, set the exit code.

use clap::Parser as _;
use s3share::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    #[cfg(feature = "gui")]
    let _ = s3share::app::PROCESS_START.set(std::time::Instant::now());
    let cli = Cli::parse();
    // What signs or checks signatures stays at info or quieter even with -vv: at debug those
    // crates log canonical requests, Authorization headers, presigned URLs and expected
    // signatures, and s3s-fs's spans record whole requests. Neither may reach a terminal or a
    // bug report. A directive matches every target that starts with it (`s3s` also matches
    // s3s_fs and s3share), and the longest match wins: hence the explicit `s3share=`.
    let serving = matches!(cli.command, Some(s3share::cli::Command::Serve { .. }));
    // An instance's region is asked for only when none is configured; away from EC2 its
    // failure is expected, and the chain goes on to us-east-1 (a warning at -v).
    let default_level = match cli.verbose {
        // A relay's access log is what its operator watches: on by default for `serve`.
        0 if serving => {
            "warn,s3s=off,s3share=warn,s3share::relay::access=info,aws_config::imds::region=error"
        }
        0 => {
            "warn,s3s=off,s3share=warn,aws_config::imds::region=error,egui_system_font_provider=error"
        }
        1 => "info,s3s=warn,s3share=info",
        _ => {
            "debug,s3s=warn,s3share=debug,aws_sigv4=info,aws_smithy_runtime=info,\
             aws_smithy_runtime_api=info,aws_smithy_http_client=info,aws_config=info,\
             hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info"
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, not in a relay's log file, and not
        // for one who asked for none (https://no-color.org: NO_COLOR set and not empty).
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();

    #[cfg(not(feature = "gui"))]
    if cli.command.is_none() {
        // A server build asked for the window: a usage error (2, as clap uses), not a crash.
        use clap::CommandFactory as _;
        eprintln!("{}", s3share::cli::Cli::command().render_help());
        eprintln!(
            "error: this build of s3share has no desktop app (built without the `gui` feature); \
             name a command, e.g. `s3share serve` or `s3share ls`"
        );
        return std::process::ExitCode::from(2);
    }
    // The desktop app's runtime yields to the window thread (`io_runtime`); the commands keep
    // the default, having no frames to keep smooth.
    #[cfg(feature = "gui")]
    let built = if cli.command.is_none() {
        s3share::app::backend::io_runtime()
    } else {
        command_runtime()
    };
    #[cfg(not(feature = "gui"))]
    let built = command_runtime();
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the I/O runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    #[cfg(feature = "gui")]
    if cli.command.is_none() {
        // No subcommand: the desktop app. Its I/O runs on the runtime; the window owns this thread.
        return match s3share::app::run_desktop(&runtime) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!(
                    "error: {}\n(run `s3share --help` for the command line)",
                    s3share::cli::shown_message(&format!("{e:#}"))
                );
                std::process::ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(run(cli)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        // `| head` had what it wanted: no message, and the status of a command that SIGPIPE
        // stopped (128 + 13), as `cat` or `ls` would end.
        Err(e) if matches!(e.downcast_ref(), Some(s3share::Error::OutputClosed)) => {
            std::process::ExitCode::from(141)
        }
        Err(e) if matches!(e.downcast_ref(), Some(s3share::Error::Cancelled)) => {
            eprintln!("cancelled");
            // What a shell reports for a command stopped by Ctrl+C (128 + SIGINT).
            std::process::ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {}", s3share::cli::shown_message(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The runtime a command runs on.
fn command_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("s3share-io")
        .build()
}

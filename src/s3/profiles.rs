//! The profiles in the AWS shared config and credentials files, for a connection list: their
//! names, where each one goes (endpoint or region, for its label), and which one a first start
//! tries. Only section headers, `region` and `endpoint_url` are read: never a secret.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// Profile names from `~/.aws/config` (`[profile NAME]`, `[default]`) and `~/.aws/credentials`
/// (`[NAME]`), honouring `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`; sorted, with
/// `default` first when present. Secrets are never read into memory here: only section headers.
pub fn aws_profiles() -> Vec<String> {
    profile_names(
        shared_file("AWS_CONFIG_FILE", "config"),
        shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    )
}

/// Where the AWS shared files are when not where the environment says: an app or a test that
/// brings its own (see [`super::ConnectOptions::aws_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFiles {
    /// The config file (`[profile NAME]` sections).
    pub config: PathBuf,
    /// The credentials file (`[NAME]` sections).
    pub credentials: PathBuf,
}

impl AwsFiles {
    /// The profile names in these files, as [`aws_profiles`] lists them.
    pub fn profiles(&self) -> Vec<String> {
        profile_names(
            std::fs::read_to_string(&self.config).ok(),
            std::fs::read_to_string(&self.credentials).ok(),
        )
    }
}

fn profile_names(config: Option<String>, credentials: Option<String>) -> Vec<String> {
    let mut names = BTreeSet::new();
    if let Some(text) = config {
        names.extend(section_names(&text, true));
    }
    if let Some(text) = credentials {
        names.extend(section_names(&text, false));
    }
    let mut list: Vec<String> = names.into_iter().collect();
    if let Some(i) = list.iter().position(|n| n == "default") {
        let d = list.remove(i);
        list.insert(0, d);
    }
    list
}

/// The text of a shared AWS file: `var` when set, else `~/.aws/<name>`.
fn shared_file(var: &str, name: &str) -> Option<String> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))?;
    std::fs::read_to_string(path).ok()
}

/// The profile a first start tries: `AWS_PROFILE` when it names a profile of the files, else
/// `default` when there is one. `None`: the embedded store. (Whether its credentials work is
/// found by connecting; a failure then falls back to the embedded store.)
pub fn first_run_profile() -> Option<String> {
    let names = aws_profiles();
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| names.contains(p))
        .or_else(|| names.iter().find(|n| *n == "default").cloned())
}

/// Where a profile's requests go, for its label: a custom endpoint, or AWS in a region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileDestination {
    /// The profile's (or the environment's) `endpoint_url`.
    pub endpoint_url: Option<String>,
    /// The profile's (or the environment's) region.
    pub region: Option<String>,
}

impl ProfileDestination {
    /// `host[:port]` for a custom endpoint, `AWS eu-west-1` for AWS (`AWS` when no region is
    /// set: buckets are then found in their own region).
    pub fn label(&self) -> String {
        match (&self.endpoint_url, &self.region) {
            (Some(url), _) => endpoint_host(url),
            (None, Some(region)) => format!("AWS {region}"),
            (None, None) => "AWS".to_owned(),
        }
    }
}

/// Where profile `name` goes: the environment (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
/// `AWS_REGION`, `AWS_DEFAULT_REGION`) wins, as in the SDK; then the profile's own settings.
pub fn profile_destination(name: &str) -> ProfileDestination {
    let config = shared_file("AWS_CONFIG_FILE", "config").unwrap_or_default();
    let credentials = shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials").unwrap_or_default();
    let mut from_files = destination_in(&config, name, true);
    let in_credentials = destination_in(&credentials, name, false);
    from_files.endpoint_url = from_files.endpoint_url.or(in_credentials.endpoint_url);
    from_files.region = from_files.region.or(in_credentials.region);
    let env = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    ProfileDestination {
        endpoint_url: env("AWS_ENDPOINT_URL_S3")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or(from_files.endpoint_url),
        region: env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or(from_files.region),
    }
}

/// `region` and `endpoint_url` of profile `name` in one file's text.
fn destination_in(text: &str, name: &str, config_file: bool) -> ProfileDestination {
    let wanted = |section: &str| {
        if !config_file || section == "default" {
            section == name
        } else {
            section
                .strip_prefix("profile")
                .filter(|r| r.starts_with(char::is_whitespace))
                .is_some_and(|r| r.trim() == name)
        }
    };
    let mut inside = false;
    let mut found = ProfileDestination::default();
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = wanted(section.trim());
            continue;
        }
        if !inside {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim() {
            "region" if !value.is_empty() => found.region = Some(value),
            "endpoint_url" if !value.is_empty() => found.endpoint_url = Some(value),
            _ => {}
        }
    }
    found
}

/// `https://host:port/path` → `host:port`.
pub fn endpoint_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}

fn section_names(text: &str, config_file: bool) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix('[')?
                .strip_suffix(']')
                .map(str::trim)
        })
        .filter_map(|section| {
            if !config_file {
                return Some(section.to_owned());
            }
            if section == "default" {
                return Some(section.to_owned());
            }
            // `[sso-session x]` and `[services x]` are not profiles.
            section
                .strip_prefix("profile")
                .filter(|r| r.starts_with(char::is_whitespace))
                .map(|r| r.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_section_headers_only() {
        let config = "[default]\nregion=eu-west-1\n[profile work]\nsso_session=x\n[sso-session x]\n[services s]\n";
        assert_eq!(section_names(config, true), ["default", "work"]);
        assert_eq!(
            section_names("[dev]\naws_secret_access_key=zzz\n", false),
            ["dev"]
        );
    }

    #[test]
    fn destinations_label_by_where_they_go() {
        let config = "[default]\nregion = eu-west-1\n[profile seaweed]\nendpoint_url = http://127.0.0.1:8333\nregion=us-east-1\n[profile bare]\n";
        let seaweed = destination_in(config, "seaweed", true);
        assert_eq!(seaweed.label(), "127.0.0.1:8333");
        assert_eq!(
            destination_in(config, "default", true).label(),
            "AWS eu-west-1"
        );
        assert_eq!(destination_in(config, "bare", true).label(), "AWS");
        assert_eq!(
            destination_in(
                "[dev]\naws_secret_access_key=zzz\nregion=ap-south-1\n",
                "dev",
                false
            )
            .label(),
            "AWS ap-south-1"
        );
        assert_eq!(
            endpoint_host("https://s3.example.com/base?x"),
            "s3.example.com"
        );
    }
}

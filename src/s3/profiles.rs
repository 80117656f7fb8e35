//! The profile names in the AWS shared config and credentials files, for a connection list.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// Profile names from `~/.aws/config` (`[profile NAME]`, `[default]`) and `~/.aws/credentials`
/// (`[NAME]`), honouring `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`; sorted, with
/// `default` first when present. Secrets are never read into memory here: only section headers.
pub fn aws_profiles() -> Vec<String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let mut names = BTreeSet::new();
    if let Some(text) =
        file("AWS_CONFIG_FILE", "config").and_then(|p| std::fs::read_to_string(p).ok())
    {
        names.extend(section_names(&text, true));
    }
    if let Some(text) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        names.extend(section_names(&text, false));
    }
    let mut list: Vec<String> = names.into_iter().collect();
    if let Some(i) = list.iter().position(|n| n == "default") {
        let d = list.remove(i);
        list.insert(0, d);
    }
    list
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
}

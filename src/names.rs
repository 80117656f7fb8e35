//! How names are ordered for people: the desktop app's file table and the relay's index pages
//! list folders and files in the same order (a server build has no desktop app, hence a module
//! of its own).

/// Names in the order a person expects, as file managers sort them: runs of digits by their
/// value (`f2` before `f10`), the rest character by character.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a, b);
    loop {
        let (Some(ca), Some(cb)) = (a.chars().next(), b.chars().next()) else {
            return a.len().cmp(&b.len());
        };
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let end_a = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            let end_b = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
            let (da, db) = (&a[..end_a], &b[..end_b]);
            let (ta, tb) = (da.trim_start_matches('0'), db.trim_start_matches('0'));
            // By value (length, then digits), then fewer leading zeros first.
            let order = ta
                .len()
                .cmp(&tb.len())
                .then_with(|| ta.cmp(tb))
                .then_with(|| da.len().cmp(&db.len()));
            if order != Ordering::Equal {
                return order;
            }
            (a, b) = (&a[end_a..], &b[end_b..]);
        } else {
            if ca != cb {
                return ca.cmp(&cb);
            }
            (a, b) = (&a[ca.len_utf8()..], &b[cb.len_utf8()..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_naturally() {
        let mut names = vec![
            "f10",
            "f1",
            "f100",
            "f2",
            "f02",
            "img 9.png",
            "img 10.png",
            "a",
            "",
            "é2",
            "é10",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "",
                "a",
                "f1",
                "f2",
                "f02",
                "f10",
                "f100",
                "img 9.png",
                "img 10.png",
                "é2",
                "é10"
            ]
        );
        assert_eq!(
            natural_cmp("x99999999999999999999999", "x100000000000000000000000"),
            std::cmp::Ordering::Less
        );
    }
}

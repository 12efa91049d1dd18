//! Near misses of real addresses: lookalikes of the organisation's own domains (typo, other TLD,
//! homoglyph or punycode, hyphenation, embedding) and misspelt local parts.

use super::random::Rand;

/// Latin letters and the Cyrillic letters that look the same.
const CONFUSABLE: &[(char, char)] = &[
    ('a', '\u{0430}'),
    ('e', '\u{0435}'),
    ('o', '\u{043e}'),
    ('p', '\u{0440}'),
    ('c', '\u{0441}'),
    ('x', '\u{0445}'),
    ('y', '\u{0443}'),
    ('i', '\u{0456}'),
];

/// ASCII letters commonly swapped for look-alike characters.
const ASCII_SWAPS: &[(&str, &str)] = &[
    ("m", "rn"),
    ("o", "0"),
    ("l", "1"),
    ("i", "l"),
    ("w", "vv"),
    ("d", "cl"),
];

const KEYBOARD: &[&str] = &["qwertyuiop", "asdfghjkl", "zxcvbnm"];

/// Which kind of lookalike was made (for tests and summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Typo,
    OtherTld,
    Homoglyph,
    Punycode,
    Hyphenation,
    Embedded,
}

fn split(domain: &str) -> (&str, &str) {
    domain.split_once('.').unwrap_or((domain, "example"))
}

fn typo(rng: &mut Rand, label: &str) -> String {
    let chars: Vec<char> = label.chars().collect();
    for _ in 0..20 {
        let mut c = chars.clone();
        let i = 1 + rng.below(c.len().saturating_sub(2).max(1));
        match rng.below(4) {
            0 if i + 1 < c.len() && c[i] != c[i + 1] => c.swap(i, i + 1),
            1 => {
                c.remove(i);
            }
            2 => c.insert(i, c[i]),
            _ => {
                let ch = c[i];
                if let Some(row) = KEYBOARD.iter().find(|r| r.contains(ch)) {
                    let row: Vec<char> = row.chars().collect();
                    let k = row.iter().position(|x| *x == ch).unwrap_or(0);
                    let n = if k + 1 < row.len() {
                        row[k + 1]
                    } else {
                        row[k - 1]
                    };
                    c[i] = n;
                }
            }
        }
        let s: String = c.into_iter().collect();
        if s != label && s.len() >= 3 && !s.starts_with('-') && !s.ends_with('-') {
            return s;
        }
    }
    format!("{label}s")
}

/// A lookalike of `domain` of the given style.
pub fn domain_lookalike(rng: &mut Rand, domain: &str, style: Style) -> String {
    let (label, tld) = split(domain);
    match style {
        Style::Typo => format!("{}.{tld}", typo(rng, label)),
        Style::OtherTld => {
            let other = *rng.pick(&["test", "invalid", "example.net", "example.org"]);
            format!("{label}.{other}")
        }
        Style::Homoglyph => {
            let candidates: Vec<&(&str, &str)> = ASCII_SWAPS
                .iter()
                .filter(|(a, _)| label.contains(a))
                .collect();
            if candidates.is_empty() {
                return format!("{}.{tld}", typo(rng, label));
            }
            let (a, b) = **rng.pick(&candidates);
            let positions: Vec<usize> = label.match_indices(a).map(|(i, _)| i).collect();
            let at = *rng.pick(&positions);
            format!("{}{b}{}.{tld}", &label[..at], &label[at + a.len()..])
        }
        Style::Punycode => {
            let chars: Vec<char> = label.chars().collect();
            let spots: Vec<usize> = (0..chars.len())
                .filter(|&i| CONFUSABLE.iter().any(|(l, _)| *l == chars[i]))
                .collect();
            if spots.is_empty() {
                return format!("{}.{tld}", typo(rng, label));
            }
            let at = *rng.pick(&spots);
            let mut c = chars;
            c[at] = CONFUSABLE
                .iter()
                .find(|(l, _)| *l == c[at])
                .map(|p| p.1)
                .unwrap_or(c[at]);
            let unicode: String = c.into_iter().collect();
            if rng.chance(0.5) {
                format!("{unicode}.{tld}")
            } else {
                format!("xn--{}.{tld}", punycode(&unicode))
            }
        }
        Style::Hyphenation => {
            if label.contains('-') {
                format!("{}.{tld}", label.replacen('-', "", 1))
            } else {
                let at = 2 + rng.below(label.len().saturating_sub(4).max(1));
                format!("{}-{}.{tld}", &label[..at], &label[at..])
            }
        }
        Style::Embedded => {
            let extra = *rng.pick(&["sso", "login", "hr", "it-support", "secure", "okta"]);
            if rng.chance(0.5) {
                format!("{label}-{extra}.{tld}")
            } else {
                format!("{label}.{tld}.{extra}.test")
            }
        }
    }
}

pub fn any_style(rng: &mut Rand) -> Style {
    *rng.pick(&[
        Style::Typo,
        Style::Typo,
        Style::OtherTld,
        Style::Homoglyph,
        Style::Punycode,
        Style::Hyphenation,
        Style::Embedded,
    ])
}

/// A misspelling of an e-mail local part by a transposition or an omission of one letter.
pub fn local_part_typo(rng: &mut Rand, local: &str) -> String {
    let chars: Vec<char> = local.chars().collect();
    for _ in 0..30 {
        let mut c = chars.clone();
        let i = 1 + rng.below(c.len().saturating_sub(2).max(1));
        if i + 1 >= c.len() || !c[i].is_ascii_alphabetic() {
            continue;
        }
        if rng.chance(0.55) {
            if !c[i + 1].is_ascii_alphabetic() || c[i] == c[i + 1] {
                continue;
            }
            c.swap(i, i + 1);
        } else {
            c.remove(i);
        }
        let s: String = c.into_iter().collect();
        if s != local && !s.contains("..") {
            return s;
        }
    }
    format!("{local}{local}", local = &local[..local.len().min(1)]) + &local[1..]
}

/// The address with its domain in ASCII (punycode labels), as systems that only store ASCII
/// names (IAM user names) record it.
pub fn ascii_email(email: &str) -> String {
    if email.is_ascii() {
        return email.to_owned();
    }
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let labels: Vec<String> = domain
        .split('.')
        .map(|l| {
            if l.is_ascii() {
                l.to_owned()
            } else {
                format!("xn--{}", punycode(l))
            }
        })
        .collect();
    format!("{local}@{}", labels.join("."))
}

/// RFC 3492 punycode of one label (without the `xn--` prefix).
pub fn punycode(input: &str) -> String {
    const BASE: u32 = 36;
    const TMIN: u32 = 1;
    const TMAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    fn adapt(mut delta: u32, points: u32, first: bool) -> u32 {
        delta /= if first { DAMP } else { 2 };
        delta += delta / points;
        let mut k = 0;
        while delta > ((BASE - TMIN) * TMAX) / 2 {
            delta /= BASE - TMIN;
            k += BASE;
        }
        k + (BASE - TMIN + 1) * delta / (delta + SKEW)
    }
    fn digit(d: u32) -> char {
        if d < 26 {
            (b'a' + d as u8) as char
        } else {
            (b'0' + (d - 26) as u8) as char
        }
    }
    let cps: Vec<u32> = input.chars().map(|c| c as u32).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let b = out.len() as u32;
    let mut h = b;
    if b > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias) = (128u32, 0u32, 72u32);
    while (h as usize) < cps.len() {
        let m = cps.iter().copied().filter(|&c| c >= n).min().unwrap_or(n);
        delta += (m - n) * (h + 1);
        n = m;
        for &c in &cps {
            if c < n {
                delta += 1;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        TMIN
                    } else if k >= bias + TMAX {
                        TMAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, h + 1, h == b);
                delta = 0;
                h += 1;
            }
        }
        delta += 1;
        n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punycode_matches_rfc_3492() {
        assert_eq!(punycode("bücher"), "bcher-kva");
        assert_eq!(punycode("münchen"), "mnchen-3ya");
        // Cyrillic "а" in "pаypal"
        assert_eq!(punycode("p\u{0430}ypal"), "pypal-4ve");
    }

    #[test]
    fn lookalikes_differ_from_the_domain() {
        let mut rng = Rand::new(5, 0);
        for style in [
            Style::Typo,
            Style::OtherTld,
            Style::Homoglyph,
            Style::Punycode,
            Style::Hyphenation,
            Style::Embedded,
        ] {
            for d in ["northwind.example", "northwind-labs.example"] {
                let l = domain_lookalike(&mut rng, d, style);
                assert_ne!(l, d, "{style:?}");
                assert!(!l.is_empty());
            }
        }
    }

    #[test]
    fn local_part_typos_are_one_edit_away() {
        let mut rng = Rand::new(9, 0);
        for _ in 0..50 {
            let t = local_part_typo(&mut rng, "jonathan.smith");
            assert_ne!(t, "jonathan.smith");
            assert!(t.len() == 14 || t.len() == 13, "{t}");
        }
    }
}

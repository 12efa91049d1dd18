//! E-mail hygiene: lookalikes of the tenant's domains and near-misses of directory addresses.

use unicode_security::{MixedScript, skeleton};

use crate::context::Person;

/// How a domain imitates one of the tenant's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookalike {
    /// Within a small edit distance (insertions, deletions, substitutions, transpositions).
    EditDistance { own: String, distance: usize },
    /// Same name under another top-level domain.
    TldSwap { own: String },
    /// Renders like the own domain (Unicode confusables, punycode, digit-for-letter).
    Confusable {
        own: String,
        unicode: String,
        mixed_scripts: bool,
    },
    /// Carries the own domain as a prefix of a foreign one (`acme.com.evil.io`).
    Embeds { own: String },
    /// The own name with a word added (`acme-sso.com`, `login-acme.com`, `acmesupport.com`).
    Combo { own: String, added: String },
}

impl Lookalike {
    pub fn explain(&self) -> String {
        match self {
            Lookalike::EditDistance { own, distance } => {
                format!("a lookalike of the tenant's domain {own} (edit distance {distance})")
            }
            Lookalike::TldSwap { own } => {
                format!(
                    "a lookalike of the tenant's domain {own} (same name, other top-level domain)"
                )
            }
            Lookalike::Confusable {
                own,
                unicode,
                mixed_scripts,
            } => format!(
                "which renders as {unicode}, confusable with the tenant's domain {own}{}",
                if *mixed_scripts {
                    " (mixes scripts)"
                } else {
                    ""
                }
            ),
            Lookalike::Embeds { own } => {
                format!("which embeds the tenant's domain {own} in a foreign domain")
            }
            Lookalike::Combo { own, added } => {
                format!("which is the name of the tenant's domain {own} with `{added}` added")
            }
        }
    }
}

fn split_tld(domain: &str) -> (&str, &str) {
    domain.rsplit_once('.').unwrap_or((domain, ""))
}

/// Maps characters commonly swapped for lookalike letters, then takes the Unicode skeleton.
fn visual_key(s: &str) -> String {
    let folded: String = s
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | '|' => 'l',
            '3' => 'e',
            '5' => 's',
            '@' => 'a',
            c => c,
        })
        .collect();
    skeleton(&folded.replace("rn", "m").replace("vv", "w"))
        .collect::<String>()
        .to_lowercase()
}

/// Is `domain` (not one of `own`) a lookalike of one of them?
pub fn lookalike(domain: &str, own: &[String]) -> Option<Lookalike> {
    let ascii = domain.to_lowercase();
    let (unicode, _) = idna::domain_to_unicode(&ascii);
    let unicode = unicode.to_lowercase();
    for o in own {
        let o = o.to_lowercase();
        if ascii == o || unicode == o {
            continue;
        }
        if (ascii.starts_with(&format!("{o}.")) || ascii.starts_with(&format!("{o}-")))
            && ascii.len() > o.len() + 1
        {
            return Some(Lookalike::Embeds { own: o });
        }
        let alnum = |s: &str| {
            s.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        };
        let (ca, co) = (alnum(&unicode), alnum(&o));
        if ca.len() > co.len() && ca.starts_with(&co) {
            return Some(Lookalike::Embeds { own: o });
        }
        if unicode != o && visual_key(&unicode) == visual_key(&o) {
            return Some(Lookalike::Confusable {
                own: o,
                mixed_scripts: !unicode.is_single_script(),
                unicode,
            });
        }
        let (name, tld) = split_tld(&ascii);
        let (own_name, own_tld) = split_tld(&o);
        if name == own_name && tld != own_tld && !name.is_empty() {
            return Some(Lookalike::TldSwap { own: o });
        }
        let d = strsim::damerau_levenshtein(&ascii, &o);
        let max = if own_name.len() >= 6 { 2 } else { 1 };
        if d >= 1 && d <= max && own_name.len() >= 3 {
            return Some(Lookalike::EditDistance {
                own: o,
                distance: d,
            });
        }
        // Combosquatting: the own name as one word of the registered name, or glued to another
        // word (a name short enough to occur by chance inside others is left alone).
        let own_label = own_name.rsplit('.').next().unwrap_or(own_name);
        let label = name.rsplit('.').next().unwrap_or(name);
        if own_label.len() >= 4 && label != own_label {
            let added = if label.split('-').any(|w| w == own_label) {
                Some(
                    label
                        .split('-')
                        .filter(|w| *w != own_label)
                        .collect::<Vec<_>>()
                        .join("-"),
                )
            } else if own_label.len() >= 6 {
                label
                    .strip_prefix(own_label)
                    .or_else(|| label.strip_suffix(own_label))
                    .filter(|rest| rest.len() >= 2)
                    .map(str::to_owned)
            } else {
                None
            };
            if let Some(added) = added.filter(|a| !a.is_empty()) {
                return Some(Lookalike::Combo { own: o, added });
            }
        }
    }
    None
}

/// The directory address whose local part is closest to `local` at the same domain, when it is a
/// near miss (1–2 edits, never an exact match).
pub fn nearest_local_part<'a>(
    local: &str,
    domain: &str,
    people: &'a [Person],
) -> Option<(&'a Person, usize)> {
    let local = local.to_lowercase();
    if local.chars().count() < 4 {
        return None;
    }
    let mut best: Option<(&Person, usize)> = None;
    for p in people {
        let Some((pl, pd)) = p.email.rsplit_once('@') else {
            continue;
        };
        if !pd.eq_ignore_ascii_case(domain) {
            continue;
        }
        let pl = pl.to_lowercase();
        if pl == local {
            return None;
        }
        let d = strsim::damerau_levenshtein(&local, &pl);
        let max = if pl.chars().count() >= 8 { 2 } else { 1 };
        if d <= max && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((p, d));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<String> {
        vec!["acmecorp.com".into()]
    }

    #[test]
    fn finds_typosquats_tld_swaps_and_embeds() {
        assert!(matches!(
            lookalike("acmecrop.com", &own()),
            Some(Lookalike::EditDistance { distance: 1, .. })
        ));
        assert!(matches!(
            lookalike("acmecorp.co", &own()),
            Some(Lookalike::TldSwap { .. })
        ));
        assert!(matches!(
            lookalike("acmecorp.com.mail-login.io", &own()),
            Some(Lookalike::Embeds { .. })
        ));
        assert!(matches!(
            lookalike("acmecorp-com.net", &own()),
            Some(Lookalike::Embeds { .. })
        ));
        assert_eq!(lookalike("gmail.com", &own()), None);
        assert_eq!(lookalike("acmecorp.com", &own()), None);
    }

    #[test]
    fn finds_the_own_name_with_a_word_added() {
        for (domain, added) in [
            ("acmecorp-sso.com", "sso"),
            ("login-acmecorp.net", "login"),
            ("acmecorpsupport.com", "support"),
            ("mail.it-acmecorp.io", "it"),
        ] {
            assert_eq!(
                lookalike(domain, &own()),
                Some(Lookalike::Combo {
                    own: "acmecorp.com".into(),
                    added: added.into()
                }),
                "{domain}"
            );
        }
        // Other brands that merely contain a short own name are not lookalikes.
        assert_eq!(lookalike("acmeworks.com", &["acme.com".to_owned()]), None);
        assert_eq!(lookalike("bigacmecorpus.org", &own()), None);
    }

    #[test]
    fn finds_homoglyphs_and_punycode() {
        // Cyrillic а (U+0430) in place of Latin a.
        let cyr = "\u{0430}cmecorp.com";
        let (puny, _) = (idna::domain_to_ascii(cyr).unwrap(), ());
        assert!(puny.starts_with("xn--"));
        match lookalike(&puny, &own()) {
            Some(Lookalike::Confusable { mixed_scripts, .. }) => assert!(mixed_scripts),
            other => panic!("{other:?}"),
        }
        assert!(lookalike("acmec0rp.com", &own()).is_some());
        assert!(matches!(
            lookalike("rnicrosoft.com", &["microsoft.com".to_owned()]),
            Some(Lookalike::Confusable { .. })
        ));
    }

    #[test]
    fn near_miss_local_parts_name_the_person() {
        let people = vec![Person {
            email: "jonathan.smith@acmecorp.com".into(),
            user_id: None,
            display_name: Some("Jonathan Smith".into()),
            department: None,
            team: None,
            title: None,
            manager: None,
            employment_type: None,
            timezone: None,
            start_date: None,
            team_since: None,
        }];
        let (p, d) = nearest_local_part("jonathan.smiht", "acmecorp.com", &people).unwrap();
        assert_eq!((p.email.as_str(), d), ("jonathan.smith@acmecorp.com", 1));
        assert!(nearest_local_part("jonathan.smith", "acmecorp.com", &people).is_none());
        assert!(nearest_local_part("maria.garcia", "acmecorp.com", &people).is_none());
    }
}

//! Privilege tiers of well-known entitlements, extended by user configuration.
//!
//! The normalizer may set a tier as a hint; the table wins when it knows the entitlement, so a
//! user's configuration (e.g. "ProdAdmins is admin") applies to every source alike.

use std::collections::HashMap;

use crate::event::{Entitlement, Privilege};

/// Built-in tiers, matched case-insensitively against an entitlement's name and id.
const BUILT_IN: &[(&str, Privilege)] = &[
    // AWS managed policies.
    ("AdministratorAccess", Privilege::Admin),
    ("IAMFullAccess", Privilege::Admin),
    ("AWSOrganizationsFullAccess", Privilege::Admin),
    ("AdministratorAccess-Amplify", Privilege::Admin),
    ("AWSSSOMasterAccountAdministrator", Privilege::Admin),
    ("AWSSSODirectoryAdministrator", Privilege::Admin),
    ("PowerUserAccess", Privilege::Elevated),
    ("SecurityAudit", Privilege::ReadOnly),
    ("ReadOnlyAccess", Privilege::ReadOnly),
    ("ViewOnlyAccess", Privilege::ReadOnly),
    ("AmazonEC2FullAccess", Privilege::Elevated),
    ("AmazonS3FullAccess", Privilege::Elevated),
    ("AmazonRDSFullAccess", Privilege::Elevated),
    ("AWSLambda_FullAccess", Privilege::Elevated),
    ("SecretsManagerReadWrite", Privilege::Elevated),
    ("AWSKeyManagementServicePowerUser", Privilege::Elevated),
    ("IAMUserChangePassword", Privilege::Standard),
    ("AmazonS3ReadOnlyAccess", Privilege::ReadOnly),
    ("AmazonEC2ReadOnlyAccess", Privilege::ReadOnly),
    ("IAMReadOnlyAccess", Privilege::ReadOnly),
    // Okta administrator roles (role types and display names).
    ("SUPER_ADMIN", Privilege::Admin),
    ("Super Administrator", Privilege::Admin),
    ("Super admin", Privilege::Admin),
    ("ORG_ADMIN", Privilege::Admin),
    ("Organization Administrator", Privilege::Admin),
    ("Organizational Administrator", Privilege::Admin),
    ("APP_ADMIN", Privilege::Elevated),
    ("Application Administrator", Privilege::Elevated),
    ("USER_ADMIN", Privilege::Elevated),
    ("Group Administrator", Privilege::Elevated),
    ("GROUP_MEMBERSHIP_ADMIN", Privilege::Elevated),
    ("Group Membership Administrator", Privilege::Elevated),
    ("HELP_DESK_ADMIN", Privilege::Elevated),
    ("Help Desk Administrator", Privilege::Elevated),
    ("API_ACCESS_MANAGEMENT_ADMIN", Privilege::Elevated),
    ("API Access Management Administrator", Privilege::Elevated),
    ("MOBILE_ADMIN", Privilege::Elevated),
    ("REPORT_ADMIN", Privilege::ReadOnly),
    ("Report Administrator", Privilege::ReadOnly),
    ("READ_ONLY_ADMIN", Privilege::ReadOnly),
    ("Read-only Administrator", Privilege::ReadOnly),
    // Microsoft Entra directory roles.
    ("Global Administrator", Privilege::Admin),
    ("Company Administrator", Privilege::Admin),
    ("Privileged Role Administrator", Privilege::Admin),
    ("Privileged Authentication Administrator", Privilege::Admin),
    ("User Access Administrator", Privilege::Admin),
    ("Owner", Privilege::Admin),
    ("Security Administrator", Privilege::Elevated),
    ("User Administrator", Privilege::Elevated),
    ("Exchange Administrator", Privilege::Elevated),
    ("SharePoint Administrator", Privilege::Elevated),
    ("Intune Administrator", Privilege::Elevated),
    ("Cloud Application Administrator", Privilege::Elevated),
    ("Authentication Administrator", Privilege::Elevated),
    ("Conditional Access Administrator", Privilege::Elevated),
    ("Hybrid Identity Administrator", Privilege::Elevated),
    ("Groups Administrator", Privilege::Elevated),
    ("Helpdesk Administrator", Privilege::Elevated),
    ("Contributor", Privilege::Elevated),
    ("Global Reader", Privilege::ReadOnly),
    ("Security Reader", Privilege::ReadOnly),
    ("Reports Reader", Privilege::ReadOnly),
    ("Directory Readers", Privilege::ReadOnly),
    ("Reader", Privilege::ReadOnly),
    // Google Workspace administrator roles.
    ("_SEED_ADMIN_ROLE", Privilege::Admin),
    ("Super Admin", Privilege::Admin),
    ("_GROUPS_ADMIN_ROLE", Privilege::Elevated),
    ("Groups Admin", Privilege::Elevated),
    ("_USER_MANAGEMENT_ADMIN_ROLE", Privilege::Elevated),
    ("User Management Admin", Privilege::Elevated),
    ("_HELP_DESK_ADMIN_ROLE", Privilege::Elevated),
    ("Help Desk Admin", Privilege::Elevated),
    ("_SERVICES_ADMIN_ROLE", Privilege::Elevated),
    ("Services Admin", Privilege::Elevated),
    ("_MOBILE_ADMIN_ROLE", Privilege::Elevated),
    ("_DIRECTORY_SYNC_ADMIN_ROLE", Privilege::Elevated),
    ("_GROUPS_READER_ROLE", Privilege::ReadOnly),
];

/// Entitlement name → tier, built-in entries first, then the user's.
#[derive(Debug, Clone)]
pub struct PrivilegeTable {
    by_name: HashMap<String, Privilege>,
}

impl Default for PrivilegeTable {
    fn default() -> Self {
        let by_name = BUILT_IN
            .iter()
            .map(|(name, tier)| (name.to_lowercase(), *tier))
            .collect();
        PrivilegeTable { by_name }
    }
}

impl PrivilegeTable {
    /// Adds or overrides an entry (user configuration).
    pub fn insert(&mut self, name: &str, tier: Privilege) {
        self.by_name.insert(name.to_lowercase(), tier);
    }

    /// The tier of a name or id (an ARN's last segment counts as its name).
    pub fn lookup(&self, name: &str) -> Option<Privilege> {
        let lower = name.to_lowercase();
        if let Some(p) = self.by_name.get(&lower) {
            return Some(*p);
        }
        let last = lower.rsplit(['/', ':']).next()?;
        self.by_name.get(last).copied()
    }

    /// Sets the entitlement's tier from the table where it knows it; keeps the hint otherwise.
    pub fn classify(&self, ent: &mut Entitlement) {
        let found = ent
            .name
            .as_deref()
            .and_then(|n| self.lookup(n))
            .or_else(|| ent.id.as_deref().and_then(|i| self.lookup(i)));
        if let Some(tier) = found {
            ent.privilege = tier;
        } else if ent.privilege == Privilege::Unknown {
            ent.privilege = heuristic(ent.label());
        }
    }
}

/// Last resort for names no table knows: words that mean admin in every identity system.
fn heuristic(label: &str) -> Privilege {
    let l = label.to_lowercase();
    let words = || l.split(|c: char| !c.is_ascii_alphanumeric());
    if words().any(|w| w == "admin" || w == "admins" || w == "administrator" || w == "root") {
        Privilege::Admin
    } else if l.contains("fullaccess") || l.contains("poweruser") {
        Privilege::Elevated
    } else if l.contains("readonly") || l.contains("read-only") || words().any(|w| w == "reader") {
        Privilege::ReadOnly
    } else {
        Privilege::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EntitlementKind;

    fn ent(name: &str, hint: Privilege) -> Entitlement {
        Entitlement {
            id: None,
            name: Some(name.into()),
            kind: EntitlementKind::Policy,
            privilege: hint,
        }
    }

    #[test]
    fn table_beats_hint_and_arn_matches_by_last_segment() {
        let t = PrivilegeTable::default();
        let mut e = ent("ReadOnlyAccess", Privilege::Admin);
        t.classify(&mut e);
        assert_eq!(e.privilege, Privilege::ReadOnly);
        assert_eq!(
            t.lookup("arn:aws:iam::aws:policy/AdministratorAccess"),
            Some(Privilege::Admin)
        );
    }

    #[test]
    fn user_entries_extend_the_table() {
        let mut t = PrivilegeTable::default();
        let mut e = ent("prod-break-glass", Privilege::Unknown);
        t.classify(&mut e);
        assert_eq!(e.privilege, Privilege::Unknown);
        t.insert("prod-break-glass", Privilege::Admin);
        t.classify(&mut e);
        assert_eq!(e.privilege, Privilege::Admin);
    }

    #[test]
    fn heuristic_recognises_admin_words_not_substrings() {
        assert_eq!(heuristic("prod-admins"), Privilege::Admin);
        assert_eq!(heuristic("badminton-club"), Privilege::Unknown);
    }
}

//! The closed vocabularies of accounts, stored as text in the database: who a user is, the state
//! of a subscription, what a single-use link is for. Parsed once where they enter (the `db`
//! layer decodes them); a value outside the vocabulary is an error, never a default.

/// A value read from the database (or elsewhere) that is not in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// Declares a text-backed enum: its stored spelling, `parse` and `Display`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident ($kind:literal) { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(value: &str) -> Result<Self, $crate::domain::account::UnknownValue> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::account::UnknownValue { kind: $kind, value: value.to_owned() }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::account::UnknownValue;

            fn from_str(value: &str) -> Result<Self, $crate::domain::account::UnknownValue> {
                Self::parse(value)
            }
        }
    };
}

pub(crate) use text_enum;

text_enum! {
    /// What a user may do: an organisation's owner (buys, invites, hands over), a member, or
    /// NanoClip staff (no organisation; the back office).
    Role ("role") {
        Owner => "owner",
        Member => "member",
        Staff => "staff",
    }
}

text_enum! {
    /// A subscription's state: opened without payment (the demo, test fixtures), paid, a renewal
    /// charge failing (still retried), or suspended after the last retry failed (until paid).
    SubscriptionStatus ("subscription status") {
        Unpaid => "unpaid",
        Active => "active",
        PastDue => "past_due",
        Suspended => "suspended",
    }
}

text_enum! {
    /// What a single-use e-mailed link does.
    TokenPurpose ("token purpose") {
        Activation => "activation",
        Reset => "reset",
        EmailChange => "email_change",
        Invitation => "invitation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_stored_spelling() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(*role));
        }
        for status in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(status.as_str()), Ok(*status));
        }
        for purpose in TokenPurpose::ALL {
            assert_eq!(TokenPurpose::parse(purpose.as_str()), Ok(*purpose));
        }
        assert_eq!(SubscriptionStatus::PastDue.to_string(), "past_due");
        assert_eq!(TokenPurpose::EmailChange.as_str(), "email_change");
    }

    #[test]
    fn an_unknown_role_is_an_error_not_a_member() {
        let error = Role::parse("admin").unwrap_err();
        assert_eq!(error.kind, "role");
        assert_eq!(error.to_string(), "unknown role: \"admin\"");
        assert!(Role::parse("Owner").is_err(), "spellings are exact");
        assert!(Role::parse("").is_err());
    }
}

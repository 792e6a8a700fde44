//! Random secrets, from the operating system's generator (each UUID v4 holds 122 random bits
//! drawn from it). The one token generator of the portal: e-mailed link tokens, CSRF nonces and
//! generated passwords.

use uuid::Uuid;

/// 64 hex characters holding 244 random bits: single-use links (stored hashed), CSRF nonces.
pub fn token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// An API key: a recognisable prefix (secret scanners look for `nanoclip_live_`) and 244
/// random bits as 64 hex characters. Stored hashed.
pub fn api_key() -> String {
    format!("{API_KEY_PREFIX}{}", token())
}

pub const API_KEY_PREFIX: &str = "nanoclip_live_";

/// A password for generated accounts (command line): four groups of five hex characters, 76
/// random bits, easy to type: `3f9a1-c04e2-…`.
pub fn password() -> String {
    let raw = Uuid::new_v4().simple().to_string();
    format!(
        "{}-{}-{}-{}",
        &raw[0..5],
        &raw[5..10],
        &raw[10..15],
        &raw[15..20]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_characters_and_never_repeat() {
        let tokens: std::collections::HashSet<String> = (0..1000).map(|_| token()).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn passwords_are_four_dashed_groups_of_five() {
        let password = password();
        let groups: Vec<&str> = password.split('-').collect();
        assert_eq!(groups.len(), 4, "{password}");
        assert!(groups.iter().all(|g| g.len() == 5), "{password}");
        assert_ne!(password, super::password());
    }
}

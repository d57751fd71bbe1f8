//! Tokens: the `Authorization` header, JWT decoding and verification, and the scope claim.
//! Half the inputs are signed with the server's secret, so the fuzzer reaches the claims.
#![no_main]

use std::sync::OnceLock;

use artifact_git::auth::{authorize, token_from_header, Access, AuthConfig, Authenticator, Grants};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzzing-secret-0123456789";

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        Authenticator::new(&AuthConfig {
            secret: Some(SECRET.into()),
            ..Default::default()
        })
        .expect("a valid configuration")
    })
}

fn check(grants: &Grants) {
    for need in [Access::Read, Access::Write, Access::Admin] {
        let _ = grants.level("ws", "data");
        let _ = authorize(Some(grants), true, false, need, "ws", "data");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(Some(token)) = token_from_header(Some(text)) {
                if let Ok(grants) = authenticator().verify(&token) {
                    check(&grants);
                }
            }
        }
        1 => check(&Grants::parse(text)),
        _ => {
            // Arbitrary claims, validly signed.
            let Ok(claims) = serde_json::from_str::<serde_json::Value>(text) else {
                return;
            };
            let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
            if let Ok(token) = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
            {
                if let Ok(grants) = authenticator().verify(&token) {
                    check(&grants);
                }
            }
        }
    }
});

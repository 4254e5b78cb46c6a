use std::sync::OnceLock;

use getrandom::SysRng;
use rsa::pkcs8::DecodePublicKey;
use rsa::PublicKey;

use super::*;

/// Key generation takes a while: two pairs for the whole module.
fn keys() -> &'static (KeyPair, KeyPair) {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = SysRng;
        (
            generate_key_pair(&mut rng).unwrap(),
            generate_key_pair(&mut rng).unwrap(),
        )
    })
}

const KEY: [u8; 16] = *b"0123456789abcdef";
const IV: [u8; 16] = *b"fedcba9876543210";

/// A request as Meta's client makes it, for `public_pem`.
fn meta_request(public_pem: &str, plain: &Value) -> Vec<u8> {
    let public = PublicKey::from_public_key_pem(public_pem).unwrap();
    let wrapped = public
        .encrypt(&mut SysRng, Oaep::<OaepSha256>::new(), &KEY)
        .unwrap();
    let data = cipher(&KEY)
        .encrypt(&nonce(&IV), plain.to_string().as_bytes())
        .unwrap();
    serde_json::to_vec(&json!({
        "encrypted_flow_data": STANDARD.encode(data),
        "encrypted_aes_key": STANDARD.encode(wrapped),
        "initial_vector": STANDARD.encode(IV),
    }))
    .unwrap()
}

#[test]
fn a_generated_key_pair_is_2048_bit_pem() {
    let (pair, _) = keys();
    assert!(pair.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let public = PublicKey::from_public_key_pem(&pair.public_pem).unwrap();
    assert_eq!(rsa::traits::PublicKeyParts::size(&public), KEY_BITS / 8);
}

#[test]
fn a_request_for_the_key_opens_and_its_answer_is_sealed_with_the_flipped_iv() {
    let (pair, _) = keys();
    let plain = json!({"version": "3.0", "action": "data_exchange", "screen": "A", "data": {"x": 1}, "flow_token": "t"});
    let opened = open(&pair.private_pem, &meta_request(&pair.public_pem, &plain)).unwrap();
    assert_eq!(opened.request, plain);
    assert!(!opened.is_ping());

    let answer = br#"{"screen":"B","data":{}}"#;
    let sealed = STANDARD.decode(opened.seal(answer).unwrap()).unwrap();
    let flipped_iv: [u8; 16] = IV.map(|b| b ^ 0xff);
    let back = cipher(&KEY)
        .decrypt(&nonce(&flipped_iv), sealed.as_slice())
        .unwrap();
    assert_eq!(back, answer);
    // With the request's own IV the answer does not open.
    assert!(cipher(&KEY)
        .decrypt(&nonce(&IV), sealed.as_slice())
        .is_err());
}

#[test]
fn every_bit_of_the_iv_is_flipped() {
    assert_eq!(flipped(&[0u8; 16]), [0xff; 16]);
    assert_eq!(flipped(&[0b1010_0101; 16]), [0b0101_1010; 16]);
    assert_eq!(flipped(&flipped(&IV)), IV);
}

#[test]
fn a_request_for_another_key_is_the_421_error() {
    let (pair, other) = keys();
    let body = meta_request(&other.public_pem, &json!({"action": "ping"}));
    let err = open(&pair.private_pem, &body).unwrap_err();
    assert!(matches!(err, Error::FlowKey(_)), "{err:?}");
}

#[test]
fn a_tampered_or_odd_request_is_the_421_error_and_one_not_in_metas_shape_a_400() {
    let (pair, _) = keys();
    let mut body: Value =
        serde_json::from_slice(&meta_request(&pair.public_pem, &json!({"action": "ping"})))
            .unwrap();
    let mut data = STANDARD
        .decode(body["encrypted_flow_data"].as_str().unwrap())
        .unwrap();
    data[0] ^= 1;
    body["encrypted_flow_data"] = json!(STANDARD.encode(data));
    let err = open(&pair.private_pem, body.to_string().as_bytes()).unwrap_err();
    assert!(matches!(err, Error::FlowKey(_)), "{err:?}");

    let err = open(&pair.private_pem, b"{\"encrypted_flow_data\": 1}").unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    // Odd fields are the same 421 as a wrong key, with the same words.
    let wrong_key = open(&pair.private_pem, body.to_string().as_bytes()).unwrap_err();
    for (field, value) in [
        ("initial_vector", STANDARD.encode([0u8; 12])),
        ("initial_vector", "not base64!".to_string()),
        ("encrypted_aes_key", STANDARD.encode([7u8; 255])),
        ("encrypted_aes_key", String::new()),
        ("encrypted_flow_data", STANDARD.encode([1u8; 3])),
    ] {
        let mut odd = body.clone();
        odd[field] = json!(value);
        let err = open(&pair.private_pem, odd.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), wrong_key.to_string(), "{field}: {value}");
        assert!(matches!(err, Error::FlowKey(_)), "{err:?}");
    }
}

#[test]
fn a_ping_is_recognised() {
    let (pair, _) = keys();
    let body = meta_request(
        &pair.public_pem,
        &json!({"version": "3.0", "action": "ping"}),
    );
    assert!(open(&pair.private_pem, &body).unwrap().is_ping());
}

fn jwt(secret: &str, alg: &str, claims: &Value) -> String {
    let head = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{head}.{claims}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{claims}.{sig}")
}

#[test]
fn a_flow_token_signature_must_be_the_app_secrets_hs256_jwt_of_the_token() {
    let with = |sig: String| json!({"flow_token": "tok-1", "flow_token_signature": sig});
    assert!(check_flow_token_signature(&json!({"flow_token": "tok-1"}), "s3cret").is_ok());
    let good = jwt("s3cret", "HS256", &json!({"flow_token": "tok-1"}));
    assert!(check_flow_token_signature(&with(good), "s3cret").is_ok());
    let no_claim = jwt("s3cret", "HS256", &json!({"iat": 1}));
    assert!(check_flow_token_signature(&with(no_claim), "s3cret").is_ok());
    for bad in [
        jwt("other", "HS256", &json!({"flow_token": "tok-1"})),
        jwt("s3cret", "none", &json!({"flow_token": "tok-1"})),
        jwt("s3cret", "HS256", &json!({"flow_token": "tok-2"})),
        "not-a-jwt".to_string(),
    ] {
        let err = check_flow_token_signature(&with(bad.clone()), "s3cret").unwrap_err();
        assert!(matches!(err, Error::FlowSignature(_)), "{bad}: {err:?}");
    }
}

#[test]
fn the_flow_tool_gets_the_request_with_the_phone_number_in_the_delivery_envelope() {
    let body = tool_body(
        &json!({"action": "INIT", "flow_token": "t"}),
        "1044",
        1_767_225_600_000,
    );
    assert_eq!(
        body,
        json!({"type": "whatsapp.flow.data_exchange", "timestamp": rfc3339_ms(1_767_225_600_000),
               "data": {"action": "INIT", "flow_token": "t", "phoneNumberId": "1044"}})
    );
}

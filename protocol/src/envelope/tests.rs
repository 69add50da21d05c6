//! Tests of envelopes and receipts: round trips, every way bytes can be
//! wrong, and the documented wire layout.

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::frame::FrameWriter;
use super::*;
use crate::Country;

/// A body with the shapes real bodies have: text, bytes, options, maps,
/// vectors and nested enums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TestBody {
    title: String,
    attachment: Vec<u8>,
    note: Option<String>,
    fields: BTreeMap<String, u64>,
    answers: Vec<Answer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Answer {
    Yes,
    No { because: String },
    Number(i64),
    Nested(Vec<Answer>),
}

fn address(s: &str) -> NodeAddress {
    s.parse().unwrap()
}

fn helsinki() -> NodeAddress {
    address("FI/helsinki-1")
}

fn lisboa() -> NodeAddress {
    address("PT/lisboa")
}

fn helsinki_key() -> SigningKey {
    signing_key_from_seed([1; 32])
}

fn lisboa_key() -> SigningKey {
    signing_key_from_seed([2; 32])
}

fn header() -> Header {
    Header {
        version: PROTOCOL_VERSION,
        id: MessageId::from_parts(1_763_000_000_000, 42),
        sender: helsinki(),
        author: Author {
            authority: AuthorityId::from_parts(1_700_000_000_000, 7),
            user: Some(UserId::from_parts(1_700_000_000_001, 8)),
        },
        recipients: vec![lisboa()],
        case: CaseId::from_parts(1_763_000_000_000, 9),
        sequence: 3,
        timestamp_ms: 1_763_000_000_123,
        kind: MessageKind::Request,
    }
}

fn body() -> TestBody {
    TestBody {
        title: "Vérification du diplôme — Ärztin".to_owned(),
        attachment: vec![0, 1, 2, 255],
        note: Some("urgent".to_owned()),
        fields: BTreeMap::from([("profession".to_owned(), 12), ("year".to_owned(), 2019)]),
        answers: vec![
            Answer::Yes,
            Answer::No {
                because: "not registered".to_owned(),
            },
            Answer::Nested(vec![Answer::Number(-5)]),
        ],
    }
}

/// Lisboa's view: it knows Helsinki's key.
fn keys() -> HashMap<NodeAddress, VerifyingKey> {
    HashMap::from([(helsinki(), helsinki_key().verifying_key())])
}

fn open_at_lisboa<B: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<Opened<B>, VerifyError> {
    let keys = keys();
    let lisboa = lisboa();
    open(bytes, &VerifyContext::new(&lisboa, &keys))
}

fn sealed() -> SignedEnvelope {
    seal(header(), &body(), &helsinki_key()).unwrap()
}

/// A frame written by hand from the layout in docs/PROTOCOL.md.
fn frame_by_hand(magic: &[u8; 4], version: u16, sections: &[&[u8]], key: &SigningKey) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.extend_from_slice(&version.to_be_bytes());
    for section in sections {
        bytes.extend_from_slice(&u32::try_from(section.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(section);
    }
    let signature = key.sign(&bytes);
    bytes.extend_from_slice(&signature.to_bytes());
    bytes
}

#[test]
fn a_sealed_message_opens_at_its_recipient() {
    let sealed = sealed();
    let opened = open_at_lisboa::<TestBody>(sealed.as_bytes()).unwrap();
    assert_eq!(opened.header, header());
    assert_eq!(opened.body, body());
    assert_eq!(opened.digest, sealed.digest());
    assert_eq!(peek_header(sealed.as_bytes()).unwrap(), header());
}

#[test]
fn the_wire_layout_is_the_documented_one() {
    let header_bytes = postcard::to_stdvec(&header()).unwrap();
    let body_bytes = postcard::to_stdvec(&body()).unwrap();
    let by_hand = frame_by_hand(b"IMI1", 1, &[&header_bytes, &body_bytes], &helsinki_key());
    assert_eq!(sealed().as_bytes(), by_hand);
    assert_eq!(&by_hand[..6], b"IMI1\x00\x01");
}

#[test]
fn sealing_twice_gives_identical_bytes() {
    assert_eq!(sealed().into_bytes(), sealed().into_bytes());
}

#[test]
fn stored_bytes_come_back_with_their_header() {
    let sealed = sealed();
    let again = SignedEnvelope::from_bytes(sealed.as_bytes().to_vec()).unwrap();
    assert_eq!(again, sealed);
    assert_eq!(again.header().id, header().id);
    let err = SignedEnvelope::from_bytes(b"IMI1\x00\x01 not a message".to_vec()).unwrap_err();
    assert_eq!(err.code(), "malformed");
}

#[test]
fn forged_signature_is_refused() {
    // Lisboa's key claims to be Helsinki.
    let forged = seal(header(), &body(), &lisboa_key()).unwrap();
    let err = open_at_lisboa::<TestBody>(forged.as_bytes()).unwrap_err();
    assert_eq!(err, VerifyError::BadSignature { sender: helsinki() });
    assert!(err.to_string().contains("FI/helsinki-1"), "{err}");
}

#[test]
fn tampered_body_is_refused() {
    let mut bytes = sealed().into_bytes();
    let at = bytes.windows(6).position(|w| w == b"urgent").unwrap();
    bytes[at..at + 6].copy_from_slice(b"relaxd");
    let err = open_at_lisboa::<TestBody>(&bytes).unwrap_err();
    assert_eq!(err.code(), "bad-signature", "{err}");
}

#[test]
fn tampered_signature_is_refused() {
    let mut bytes = sealed().into_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let err = open_at_lisboa::<TestBody>(&bytes).unwrap_err();
    assert_eq!(err.code(), "bad-signature", "{err}");
}

#[test]
fn unknown_sender_is_refused() {
    let mut stranger = header();
    stranger.sender = address("DE/berlin");
    let sealed = seal(stranger, &body(), &lisboa_key()).unwrap();
    let err = open_at_lisboa::<TestBody>(sealed.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnknownSender {
            sender: address("DE/berlin")
        }
    );
    assert!(err.to_string().contains("DE/berlin"), "{err}");
}

#[test]
fn message_for_another_node_is_refused() {
    let mut elsewhere = header();
    elsewhere.recipients = vec![address("PT/porto"), address("EU/observer")];
    let sealed = seal(elsewhere, &body(), &helsinki_key()).unwrap();
    let err = open_at_lisboa::<TestBody>(sealed.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::WrongRecipient {
            this_node: lisboa(),
            recipients: vec![address("PT/porto"), address("EU/observer")],
        }
    );
    assert_eq!(
        err.to_string(),
        "the message is addressed to PT/porto, EU/observer, not to this node PT/lisboa"
    );
}

#[test]
fn one_of_many_recipients_opens_it() {
    let mut broadcast = header();
    broadcast.kind = MessageKind::Alert;
    broadcast.recipients = vec![address("DE/berlin"), lisboa(), address("EU/observer")];
    let sealed = seal(broadcast, &body(), &helsinki_key()).unwrap();
    assert!(open_at_lisboa::<TestBody>(sealed.as_bytes()).is_ok());
}

#[test]
fn signed_frame_of_a_later_version_is_refused_as_such() {
    let mut later = header();
    later.version = 2;
    let sealed = seal_any_version(later, &body(), &helsinki_key()).unwrap();
    let err = open_at_lisboa::<TestBody>(sealed.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn header_version_must_agree_with_the_frame() {
    let mut later = header();
    later.version = 2;
    let header_bytes = postcard::to_stdvec(&later).unwrap();
    let body_bytes = postcard::to_stdvec(&body()).unwrap();
    let bytes = frame_by_hand(b"IMI1", 1, &[&header_bytes, &body_bytes], &helsinki_key());
    let err = open_at_lisboa::<TestBody>(&bytes).unwrap_err();
    assert_eq!(err.code(), "malformed");
    assert!(err.to_string().contains("header says version 2"), "{err}");
}

#[test]
fn garbage_is_refused_as_malformed() {
    for garbage in [
        &b""[..],
        b"IMI",
        b"GET / HTTP/1.1\r\n\r\n",
        b"IMI1\x00\x01\xff\xff\xff\xff",
        &[0u8; 200],
    ] {
        let err = open_at_lisboa::<TestBody>(garbage).unwrap_err();
        assert_eq!(err.code(), "malformed", "{garbage:?}: {err}");
    }
    let err = open_at_lisboa::<TestBody>(b"HTTP/1.1 200 OK").unwrap_err();
    assert!(err.to_string().contains("\"IMI1\""), "{err}");
}

#[test]
fn wrong_body_type_is_refused_after_the_signature() {
    let err = open_at_lisboa::<Vec<Answer>>(sealed().as_bytes()).unwrap_err();
    assert_eq!(err.code(), "malformed-body", "{err}");
    let err = open_at_lisboa::<u64>(sealed().as_bytes()).unwrap_err();
    assert!(matches!(err, VerifyError::MalformedBody { .. }), "{err}");
}

#[test]
fn over_long_number_in_a_signed_body_is_refused() {
    let header_bytes = postcard::to_stdvec(&header()).unwrap();
    // 5 written in two bytes instead of one; postcard alone would accept it.
    let bytes = frame_by_hand(b"IMI1", 1, &[&header_bytes, &[0x85, 0x00]], &helsinki_key());
    assert_eq!(postcard::from_bytes::<u64>(&[0x85, 0x00]).unwrap(), 5);
    let err = open_at_lisboa::<u64>(&bytes).unwrap_err();
    assert_eq!(err.code(), "malformed-body");
    assert!(err.to_string().contains("canonical"), "{err}");
    let canonical = frame_by_hand(b"IMI1", 1, &[&header_bytes, &[0x05]], &helsinki_key());
    assert_eq!(open_at_lisboa::<u64>(&canonical).unwrap().body, 5);
}

#[test]
fn unsorted_map_in_a_signed_body_is_refused() {
    let pairs: Vec<(String, u64)> = vec![("z".into(), 1), ("a".into(), 2)];
    // A sequence of pairs encodes like a map in postcard.
    let body_bytes = postcard::to_stdvec(&pairs).unwrap();
    let header_bytes = postcard::to_stdvec(&header()).unwrap();
    let bytes = frame_by_hand(b"IMI1", 1, &[&header_bytes, &body_bytes], &helsinki_key());
    let err = open_at_lisboa::<BTreeMap<String, u64>>(&bytes).unwrap_err();
    assert_eq!(err.code(), "malformed-body", "{err}");
}

#[test]
fn header_text_written_differently_is_refused() {
    // "fi" reads as Finland but is not how Finland is written.
    let mut header_bytes = postcard::to_stdvec(&header()).unwrap();
    let at = header_bytes
        .windows(3)
        .position(|w| w == b"\x02FI")
        .unwrap();
    header_bytes[at + 1..at + 3].copy_from_slice(b"fi");
    let body_bytes = postcard::to_stdvec(&body()).unwrap();
    let bytes = frame_by_hand(b"IMI1", 1, &[&header_bytes, &body_bytes], &helsinki_key());
    let err = open_at_lisboa::<TestBody>(&bytes).unwrap_err();
    assert_eq!(err.code(), "malformed", "{err}");
    assert!(err.to_string().contains("canonical"), "{err}");
}

#[test]
fn sealing_checks_version_and_recipients() {
    let mut later = header();
    later.version = 2;
    let err = seal(later, &body(), &helsinki_key()).unwrap_err();
    assert!(
        matches!(err, EncodeError::UnsupportedVersion { found: 2, .. }),
        "{err}"
    );
    let mut nobody = header();
    nobody.recipients.clear();
    let err = seal(nobody, &body(), &helsinki_key()).unwrap_err();
    assert!(err.to_string().contains("no recipients"), "{err}");
}

#[test]
fn sender_keys_can_live_in_a_btree_map() {
    let keys = BTreeMap::from([(helsinki(), helsinki_key().verifying_key())]);
    let lisboa = lisboa();
    let opened = open::<TestBody>(sealed().as_bytes(), &VerifyContext::new(&lisboa, &keys));
    assert!(opened.is_ok());
}

#[test]
fn error_codes_are_distinct() {
    let errors = [
        VerifyError::Malformed { reason: "x".into() },
        VerifyError::UnsupportedVersion {
            found: 2,
            supported: 1,
        },
        VerifyError::UnknownSender { sender: helsinki() },
        VerifyError::BadSignature { sender: helsinki() },
        VerifyError::WrongRecipient {
            this_node: lisboa(),
            recipients: vec![],
        },
        VerifyError::MalformedBody { reason: "x".into() },
    ];
    let codes: std::collections::BTreeSet<_> = errors.iter().map(VerifyError::code).collect();
    assert_eq!(codes.len(), errors.len());
}

// Receipts.

fn receipt(outcome: ReceiptOutcome) -> ReceiptBody {
    let sealed = sealed();
    ReceiptBody::new(
        sealed.header(),
        sealed.digest(),
        lisboa(),
        1_763_000_000_456,
        outcome,
    )
}

#[test]
fn an_accepting_receipt_opens_with_the_receivers_key() {
    let signed = seal_receipt(receipt(ReceiptOutcome::Accepted), &lisboa_key()).unwrap();
    let body = open_receipt(signed.as_bytes(), &lisboa_key().verifying_key()).unwrap();
    assert_eq!(body, receipt(ReceiptOutcome::Accepted));
    assert!(body.outcome.is_accepted());
    body.check_matches(&sealed()).unwrap();
    assert_eq!(&signed.as_bytes()[..6], b"IMR1\x00\x01");
    let by_hand = frame_by_hand(
        b"IMR1",
        1,
        &[&postcard::to_stdvec(&body).unwrap()],
        &lisboa_key(),
    );
    assert_eq!(signed.as_bytes(), by_hand);
}

#[test]
fn a_rejecting_receipt_carries_code_and_reason() {
    let forged = seal(header(), &body(), &lisboa_key()).unwrap();
    let err = open_at_lisboa::<TestBody>(forged.as_bytes()).unwrap_err();
    let peeked = peek_header(forged.as_bytes()).unwrap();
    let body = ReceiptBody::new(
        &peeked,
        wire_digest(forged.as_bytes()),
        lisboa(),
        5,
        ReceiptOutcome::rejected(&err),
    );
    let signed = seal_receipt(body, &lisboa_key()).unwrap();
    let opened = open_receipt(signed.as_bytes(), &lisboa_key().verifying_key()).unwrap();
    let ReceiptOutcome::Rejected { code, reason } = &opened.outcome else {
        panic!("expected a rejection, got {:?}", opened.outcome);
    };
    assert_eq!(code, "bad-signature");
    assert!(reason.contains("does not verify"), "{reason}");
    opened.check_matches(&forged).unwrap();
}

#[test]
fn a_receipt_signed_by_another_key_is_refused() {
    let signed = seal_receipt(receipt(ReceiptOutcome::Accepted), &helsinki_key()).unwrap();
    let err = open_receipt(signed.as_bytes(), &lisboa_key().verifying_key()).unwrap_err();
    assert_eq!(err, VerifyError::BadSignature { sender: lisboa() });
}

#[test]
fn a_tampered_receipt_is_refused() {
    let body = receipt(ReceiptOutcome::Accepted);
    let signed = seal_receipt(body.clone(), &lisboa_key()).unwrap();
    let mut bytes = signed.into_bytes();
    // Claim that other bytes were received.
    let at = bytes
        .windows(32)
        .position(|w| w == body.envelope_digest)
        .unwrap();
    bytes[at] ^= 0x80;
    let err = open_receipt(&bytes, &lisboa_key().verifying_key()).unwrap_err();
    assert_eq!(err, VerifyError::BadSignature { sender: lisboa() });
}

#[test]
fn receipts_and_envelopes_are_not_mistaken_for_each_other() {
    let signed = seal_receipt(receipt(ReceiptOutcome::Accepted), &lisboa_key()).unwrap();
    let err = open_at_lisboa::<TestBody>(signed.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "malformed");
    let err = open_receipt(sealed().as_bytes(), &helsinki_key().verifying_key()).unwrap_err();
    assert_eq!(err.code(), "malformed");
    assert!(err.to_string().contains("\"IMR1\""), "{err}");
}

#[test]
fn receipts_are_deterministic_and_reload_from_bytes() {
    let a = seal_receipt(receipt(ReceiptOutcome::Accepted), &lisboa_key()).unwrap();
    let b = seal_receipt(receipt(ReceiptOutcome::Accepted), &lisboa_key()).unwrap();
    assert_eq!(a, b);
    let reloaded = SignedReceipt::from_bytes(a.as_bytes().to_vec()).unwrap();
    assert_eq!(reloaded.body(), a.body());
    assert_eq!(reloaded.digest(), a.digest());
    assert_eq!(
        SignedReceipt::from_bytes(b"IMR1".to_vec())
            .unwrap_err()
            .code(),
        "malformed"
    );
}

#[test]
fn receipt_of_a_later_version_is_refused_as_such() {
    let mut writer = FrameWriter::new(&super::receipt::RECEIPT_MAGIC, 2);
    writer
        .section("receipt", &receipt(ReceiptOutcome::Accepted))
        .unwrap();
    let bytes = writer.sign(&lisboa_key());
    let err = open_receipt(&bytes, &lisboa_key().verifying_key()).unwrap_err();
    assert_eq!(err.code(), "unsupported-version");
}

#[test]
fn a_receipt_for_something_else_does_not_match() {
    let sent = sealed();
    let mut other = receipt(ReceiptOutcome::Accepted);
    other.message = MessageId::from_parts(1, 1);
    assert!(matches!(
        other.check_matches(&sent),
        Err(ReceiptMismatch::Message { .. })
    ));

    let mut other = receipt(ReceiptOutcome::Accepted);
    other.envelope_digest[0] ^= 1;
    let err = other.check_matches(&sent).unwrap_err();
    assert!(err.to_string().contains("other bytes"), "{err}");

    let mut other = receipt(ReceiptOutcome::Accepted);
    other.sequence += 1;
    let err = other.check_matches(&sent).unwrap_err();
    assert!(matches!(err, ReceiptMismatch::Case { .. }), "{err}");
    assert!(err.to_string().contains("#4"), "{err}");

    let mut other = receipt(ReceiptOutcome::Accepted);
    other.receiver = address("DE/berlin");
    let err = other.check_matches(&sent).unwrap_err();
    assert!(err.to_string().contains("DE/berlin"), "{err}");
}

// Properties over arbitrary headers and bodies.

fn arb_address() -> impl Strategy<Value = NodeAddress> {
    (
        proptest::sample::select(Country::ALL.to_vec()),
        "[a-z0-9-]{1,20}",
    )
        .prop_map(|(country, name)| NodeAddress::new(country, name.parse().unwrap()))
}

fn arb_header(recipient: NodeAddress) -> impl Strategy<Value = Header> {
    (
        (0u64..1 << 48, any::<u128>()),
        (
            0u64..1 << 48,
            any::<u128>(),
            proptest::option::of(any::<u128>()),
        ),
        proptest::collection::vec(arb_address(), 0..4),
        any::<u64>(),
        any::<u64>(),
        proptest::sample::select(vec![
            MessageKind::Request,
            MessageKind::Alert,
            MessageKind::Notification,
            MessageKind::PublicCase,
            MessageKind::Directory,
            MessageKind::Control,
        ]),
    )
        .prop_map(
            move |((ts, rnd), (ats, arnd, user), mut others, sequence, timestamp_ms, kind)| {
                let at = others.len() / 2;
                others.insert(at, recipient.clone());
                Header {
                    version: PROTOCOL_VERSION,
                    id: MessageId::from_parts(ts, rnd),
                    sender: helsinki(),
                    author: Author {
                        authority: AuthorityId::from_parts(ats, arnd),
                        user: user.map(|u| UserId::from_parts(ats, u)),
                    },
                    recipients: others,
                    case: CaseId::from_parts(ts, rnd ^ 1),
                    sequence,
                    timestamp_ms,
                    kind,
                }
            },
        )
}

fn arb_answer() -> impl Strategy<Value = Answer> {
    let leaf = prop_oneof![
        Just(Answer::Yes),
        ".{0,20}".prop_map(|because| Answer::No { because }),
        any::<i64>().prop_map(Answer::Number),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(Answer::Nested)
    })
}

fn arb_body() -> impl Strategy<Value = TestBody> {
    (
        ".{0,40}",
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::option::of(".{0,20}"),
        proptest::collection::btree_map(".{0,8}", any::<u64>(), 0..5),
        proptest::collection::vec(arb_answer(), 0..5),
    )
        .prop_map(|(title, attachment, note, fields, answers)| TestBody {
            title,
            attachment,
            note,
            fields,
            answers,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_body_round_trips(header in arb_header(lisboa()), body in arb_body()) {
        let sealed = seal(header.clone(), &body, &helsinki_key()).unwrap();
        let opened = open_at_lisboa::<TestBody>(sealed.as_bytes()).unwrap();
        prop_assert_eq!(&opened.header, &header);
        prop_assert_eq!(opened.body, body.clone());
        prop_assert_eq!(opened.digest, sealed.digest());
        let again = seal(header, &body, &helsinki_key()).unwrap();
        prop_assert_eq!(again.as_bytes(), sealed.as_bytes());
    }

    #[test]
    fn any_flipped_bit_is_refused(
        header in arb_header(lisboa()),
        body in arb_body(),
        at in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = seal(header, &body, &helsinki_key()).unwrap().into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        prop_assert!(open_at_lisboa::<TestBody>(&bytes).is_err(), "flip at byte {} bit {} accepted", at, bit);
    }

    #[test]
    fn truncated_messages_are_refused(
        header in arb_header(lisboa()),
        body in arb_body(),
        cut in any::<proptest::sample::Index>(),
    ) {
        let bytes = seal(header, &body, &helsinki_key()).unwrap().into_bytes();
        let cut = cut.index(bytes.len());
        let err = open_at_lisboa::<TestBody>(&bytes[..cut]).unwrap_err();
        prop_assert_eq!(err.code(), "malformed", "{}", err);
    }

    #[test]
    fn appended_bytes_are_refused(
        header in arb_header(lisboa()),
        body in arb_body(),
        extra in proptest::collection::vec(any::<u8>(), 1..100),
    ) {
        let mut bytes = seal(header, &body, &helsinki_key()).unwrap().into_bytes();
        bytes.extend_from_slice(&extra);
        let err = open_at_lisboa::<TestBody>(&bytes).unwrap_err();
        prop_assert_eq!(err.code(), "malformed", "{}", err);
        prop_assert!(err.to_string().contains("follow the signature"), "{}", err);
    }

    #[test]
    fn any_flipped_bit_in_a_receipt_is_refused(
        at in any::<proptest::sample::Index>(),
        bit in 0u8..8,
        received_at_ms in any::<u64>(),
        rejected in proptest::option::of((".{0,10}", ".{0,40}")),
    ) {
        let outcome = match rejected {
            Some((code, reason)) => ReceiptOutcome::Rejected { code, reason },
            None => ReceiptOutcome::Accepted,
        };
        let mut body = receipt(outcome);
        body.received_at_ms = received_at_ms;
        let signed = seal_receipt(body.clone(), &lisboa_key()).unwrap();
        prop_assert_eq!(open_receipt(signed.as_bytes(), &lisboa_key().verifying_key()).unwrap(), body);
        let mut bytes = signed.into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        prop_assert!(open_receipt(&bytes, &lisboa_key().verifying_key()).is_err());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The example of docs/PROTOCOL.md, byte for byte: any change to the
/// encoding of headers, receipts or frames breaks this test and must come
/// with a new protocol version.
#[test]
fn the_documented_example_encodes_byte_for_byte() {
    let sealed = seal(header(), &"Olá".to_owned(), &helsinki_key()).unwrap();
    assert_eq!(
        hex(sealed.as_bytes()),
        concat!(
            "494d4931",
            "0001",
            "0000008f",
            "01",
            "1a30314b3958465437473030303030303030303030303030303141",
            "024649",
            "0a68656c73696e6b692d31",
            "1a3031484637594154303030303030303030303030303030303037",
            "011a3031484637594154303130303030303030303030303030303038",
            "01025054066c6973626f61",
            "1a30314b3958465437473030303030303030303030303030303039",
            "03",
            "fbbcf4d7a733",
            "00",
            "00000005",
            "044f6cc3a1",
            "ea991d25910394e27585fac334da773011fbb82615d1fa8a225a90cf0cb81b78",
            "b1d3c3f4dc7bc2ff1b95ba01c50ef068a3ee285b8d82231bf1cf0aa1522eae07",
        )
    );
    let receipt = ReceiptBody::new(
        sealed.header(),
        sealed.digest(),
        lisboa(),
        1_763_000_000_456,
        ReceiptOutcome::Accepted,
    );
    let signed = seal_receipt(receipt, &lisboa_key()).unwrap();
    assert_eq!(
        hex(signed.as_bytes()),
        concat!(
            "494d5231",
            "0001",
            "00000068",
            "1a30314b3958465437473030303030303030303030303030303141",
            "1a30314b3958465437473030303030303030303030303030303039",
            "03",
            "7fdfd499125f956567448720c8c2ab466c4b7b17192677122c07ecbf1f4cd4fe",
            "025054066c6973626f61",
            "c8bff4d7a733",
            "00",
            "9da66072ba16a459d3dd1ba7cbebf8c081073c3b945bf842edcff6c65c3e3faf",
            "2da97c160c4c6873297896818bde6bc02781b0fc090fd573041528847f05c709",
        )
    );
    assert_eq!(hex(&sealed.digest()), hex(&signed.body().envelope_digest));
}

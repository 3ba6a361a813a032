//! Round trips of every kind of value, and frames made to hurt.

use super::*;

#[test]
fn values_of_every_kind_round_trip() {
    let value = Value::map([
        ("n", Value::NULL),
        ("b", Value::from(true)),
        ("i", Value::from(-7)),
        ("f", Value::from(f64::NAN)),
        ("s", Value::from("é")),
        ("y", Value::bytes(vec![0u8, 255])),
        ("l", Value::list([Value::from(1), Value::list([])])),
    ]);
    let call = WireCall {
        callback: 3,
        request: 9,
        event_id: "signup-7".into(),
        event: "e".into(),
        names: vec!["v".into()],
        values: vec![value.clone()],
    };
    let calls = ToWorker::Calls(vec![call.clone(), call]);
    let ToWorker::Calls(calls) = ToWorker::decode(&calls.encode()).unwrap() else {
        panic!("not calls");
    };
    assert_eq!(calls.len(), 2);
    let WireCall {
        values, event_id, ..
    } = &calls[1];
    assert_eq!(event_id, "signup-7");
    assert_eq!(
        values[0].get("y").unwrap().as_bytes(),
        Some(&[0u8, 255][..])
    );
    assert!(values[0].get("f").unwrap().as_f64().unwrap().is_nan());
    assert_eq!(values[0].get("s"), value.get("s"));
}

#[test]
fn hostile_frames_are_refused_not_trusted() {
    // A count far larger than the frame.
    let mut forged = vec![CALL];
    forged.extend_from_slice(&0u32.to_le_bytes());
    forged.extend_from_slice(&0u64.to_le_bytes());
    forged.extend_from_slice(&1u32.to_le_bytes());
    forged.push(b'e');
    forged.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        ToWorker::decode(&forged),
        Err(WireError::Broken(_))
    ));
    // Nesting past the limit.
    let mut deep = Value::NULL;
    for _ in 0..(MAX_VALUE_DEPTH + 2) {
        deep = Value::list([deep]);
    }
    let init = ToWorker::Init { config: deep };
    assert!(matches!(
        ToWorker::decode(&init.encode()),
        Err(WireError::Broken(_))
    ));
    // Truncated, trailing bytes, unknown tags.
    assert!(ToWorker::decode(&[]).is_err());
    assert!(ToWorker::decode(&[SHUTDOWN, 0]).is_err());
    assert!(FromWorker::decode(&[200]).is_err());
    let mut frame: &[u8] = &[0, 0, 0, 0];
    assert!(matches!(read_frame(&mut frame), Err(WireError::Broken(_))));
    let mut frame: &[u8] = &[5, 0, 0, 0, 1];
    assert!(matches!(read_frame(&mut frame), Err(WireError::Broken(_))));
}

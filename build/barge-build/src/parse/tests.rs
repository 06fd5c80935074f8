use super::*;

#[test]
fn minimal() {
    let d = parse("FROM scratch\n").unwrap();
    assert_eq!(d.stages.len(), 1);
}

//! Idempotency keys: claimed once and bound to a reserved id, remembered, taken over with that id when an
//! attempt ended without an answer, expired; one winner among concurrent claims; a create under a reserved
//! id happens once.

use super::*;
use meters::store::{CreateMeterRequest, IdempotencyClaim, IdempotencyCompletion};

/// The lease a claim takes in these tests: a request's deadline.
const LEASE: chrono::Duration = chrono::Duration::seconds(8);

pub(super) async fn an_idempotency_key_is_claimed_once_remembered_taken_over_and_expires(
    store: Store,
) {
    let (account, other) = (account(), account());
    let now = meters::domain::meter::now();
    let claim = |account, key: &'static str, fingerprint: &'static str, at| {
        let store = Arc::clone(&store);
        async move {
            let reserved = store.reserve_id().await.unwrap();
            let claim = store
                .claim_idempotent(
                    &account,
                    IdempotencyClaim {
                        key,
                        fingerprint,
                        reserved,
                        lease_until: at + LEASE,
                        now: at,
                    },
                )
                .await
                .unwrap();
            (claim, reserved)
        }
    };
    let (first, reserved) = claim(account, "key-1", "body-a", now).await;
    assert_eq!(first, Claim::Claimed { meter_id: reserved });
    assert_eq!(
        claim(account, "key-1", "body-a", now).await.0,
        Claim::InProgress
    );
    assert_eq!(
        claim(account, "key-1", "body-b", now).await.0,
        Claim::OtherBody
    );
    // Keys are the account's own: another account's same key is free.
    assert!(matches!(
        claim(other, "key-1", "body-a", now).await.0,
        Claim::Claimed { .. }
    ));
    store
        .complete_idempotent(
            &account,
            IdempotencyCompletion {
                key: "key-1",
                fingerprint: "body-a",
                meter_id: reserved,
                answer: &answer("{\"first\":1}"),
                now,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        claim(account, "key-1", "body-a", now).await.0,
        Claim::Completed(answer("{\"first\":1}"))
    );
    // A request that ended without knowing what it wrote: the same body takes the key over at once, bound
    // to the same id; another body would have been refused while it ran.
    let (_, unfinished) = claim(account, "key-2", "body-a", now).await;
    store
        .end_idempotent_lease(&account, "key-2", now)
        .await
        .unwrap();
    assert_eq!(
        claim(account, "key-2", "body-a", now).await.0,
        Claim::Claimed {
            meter_id: unfinished
        }
    );
    // A lease runs out by itself at the deadline (a process that died mid-request).
    let past_the_lease = now + LEASE + chrono::Duration::seconds(1);
    assert_eq!(
        claim(account, "key-2", "body-a", past_the_lease).await.0,
        Claim::Claimed {
            meter_id: unfinished
        }
    );
    // Another body after an unfinished lease ended: as if the key were free.
    let (fresh, reserved) = claim(account, "key-3", "body-a", now).await;
    assert_eq!(fresh, Claim::Claimed { meter_id: reserved });
    let much_later = now + LEASE * 2;
    let (taken, reserved) = claim(account, "key-3", "body-c", much_later).await;
    assert_eq!(taken, Claim::Claimed { meter_id: reserved });
    // After 24 hours a completed key is free again, with a new id.
    let tomorrow = now + chrono::Duration::hours(24) + chrono::Duration::seconds(1);
    let (later, reserved) = claim(account, "key-1", "body-z", tomorrow).await;
    assert_eq!(later, Claim::Claimed { meter_id: reserved });
    // No meter was created by any of this, and the records do not show in the account's list.
    assert!(every_meter(&*store, &account).await.is_empty());
}

pub(super) async fn of_concurrent_claims_of_one_idempotency_key_exactly_one_wins(store: Store) {
    let account = account();
    let now = meters::domain::meter::now();
    let claims = join_all((0..8).map(|_| {
        let store = Arc::clone(&store);
        async move {
            let reserved = store.reserve_id().await.unwrap();
            store
                .claim_idempotent(
                    &account,
                    IdempotencyClaim {
                        key: "contested",
                        fingerprint: "body",
                        reserved,
                        lease_until: now + LEASE,
                        now,
                    },
                )
                .await
                .unwrap()
        }
    }))
    .await;
    let winners = claims
        .iter()
        .filter(|claim| matches!(claim, Claim::Claimed { .. }))
        .count();
    assert_eq!(winners, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|claim| matches!(claim, Claim::Claimed { .. } | Claim::InProgress))
    );
}

/// Of concurrent takeovers of one key whose attempt ended, exactly one wins, bound to the attempt's id.
pub(super) async fn of_concurrent_takeovers_of_an_ended_claim_exactly_one_wins(store: Store) {
    let account = account();
    let now = meters::domain::meter::now();
    let first = store.reserve_id().await.unwrap();
    store
        .claim_idempotent(
            &account,
            IdempotencyClaim {
                key: "ended",
                fingerprint: "body",
                reserved: first,
                lease_until: now + LEASE,
                now,
            },
        )
        .await
        .unwrap();
    store
        .end_idempotent_lease(&account, "ended", now)
        .await
        .unwrap();
    let claims = join_all((0..8).map(|_| {
        let store = Arc::clone(&store);
        async move {
            let reserved = store.reserve_id().await.unwrap();
            store
                .claim_idempotent(
                    &account,
                    IdempotencyClaim {
                        key: "ended",
                        fingerprint: "body",
                        reserved,
                        lease_until: now + LEASE,
                        now,
                    },
                )
                .await
                .unwrap()
        }
    }))
    .await;
    let winners: Vec<&Claim> = claims
        .iter()
        .filter(|claim| matches!(claim, Claim::Claimed { .. }))
        .collect();
    assert_eq!(
        winners,
        vec![&Claim::Claimed { meter_id: first }],
        "{claims:?}"
    );
}

/// A create under a reserved id stores one meter, however often it is repeated: a repeat finds the meter
/// the first wrote, and says so.
pub(super) async fn a_create_under_a_reserved_id_happens_once(store: Store) {
    let account = account();
    let id = store.reserve_id().await.unwrap();
    let first = store
        .create_with_id(
            &account,
            CreateMeterRequest {
                id,
                meter: new_meter("reserved"),
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert!(!first.earlier_attempt);
    let again = store
        .create_with_id(
            &account,
            CreateMeterRequest {
                id,
                meter: new_meter("reserved"),
                actor: tester(),
            },
        )
        .await
        .unwrap();
    assert!(again.earlier_attempt);
    assert_eq!(again.meter, first.meter);
    assert_eq!(every_meter(&*store, &account).await, vec![first.meter]);
    assert_ne!(
        store.reserve_id().await.unwrap(),
        id,
        "an id is reserved once"
    );
}

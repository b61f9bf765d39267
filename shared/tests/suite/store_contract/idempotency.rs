//! Idempotency keys: claimed once, remembered, released, expired; one winner among concurrent claims.

use super::*;

pub(super) async fn an_idempotency_key_is_claimed_once_remembered_released_and_expires(
    store: Store,
) {
    let (account, other) = (account(), account());
    let now = meters::domain::meter::now();
    let claim = |account, key: &'static str, fingerprint: &'static str, at| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotent(&account, key, fingerprint, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim(account, "key-1", "body-a", now).await, Claim::Claimed);
    assert_eq!(
        claim(account, "key-1", "body-a", now).await,
        Claim::InProgress
    );
    assert_eq!(
        claim(account, "key-1", "body-b", now).await,
        Claim::OtherBody
    );
    // Keys are the account's own: another account's same key is free.
    assert_eq!(claim(other, "key-1", "body-a", now).await, Claim::Claimed);
    store
        .complete_idempotent(&account, "key-1", "body-a", &answer("{\"first\":1}"), now)
        .await
        .unwrap();
    assert_eq!(
        claim(account, "key-1", "body-a", now).await,
        Claim::Completed(answer("{\"first\":1}"))
    );
    // A failed request is forgotten.
    assert_eq!(claim(account, "key-2", "body-a", now).await, Claim::Claimed);
    store.release_idempotent(&account, "key-2").await.unwrap();
    assert_eq!(claim(account, "key-2", "body-c", now).await, Claim::Claimed);
    // After 24 hours a completed key is free again; an unfinished claim after its lease.
    let tomorrow = now + chrono::Duration::hours(24) + chrono::Duration::seconds(1);
    assert_eq!(
        claim(account, "key-1", "body-z", tomorrow).await,
        Claim::Claimed
    );
    let later = now + chrono::Duration::seconds(61);
    assert_eq!(
        claim(account, "key-2", "body-d", later).await,
        Claim::Claimed
    );
    // No meter was created by any of this, and the records do not show in the account's list.
    assert!(every_meter(&*store, &account).await.is_empty());
}

pub(super) async fn of_concurrent_claims_of_one_idempotency_key_exactly_one_wins(store: Store) {
    let account = account();
    let now = meters::domain::meter::now();
    let claims = join_all((0..8).map(|_| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotent(&account, "contested", "body", now)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        claims
            .iter()
            .filter(|claim| **claim == Claim::Claimed)
            .count(),
        1,
        "{claims:?}"
    );
    assert!(
        claims
            .iter()
            .all(|claim| matches!(claim, Claim::Claimed | Claim::InProgress))
    );
}

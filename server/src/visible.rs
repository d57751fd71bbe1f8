//! What readers may see of a repository: the commits its refs reach
//! ([`history::Reachable`]), computed once per state of the refs (a walk of every commit) and
//! kept for the reads that follow. Every history route resolves the revisions it is given
//! within it, so a commit no ref reaches (a deleted branch, a force push) is unknown to them
//! all, whatever spelling names it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use history::Reachable;
use objectstore::ObjectDb;

use crate::repo::Repo;

/// Why what the refs reach could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum VisibleError {
    /// Reading the commits failed.
    #[error(transparent)]
    History(#[from] history::Error),
    /// The walk's task failed.
    #[error("walking the history failed: {0}")]
    Task(String),
}

/// States of refs kept (each a sorted list of commit ids).
const KEPT: usize = 32;

/// The visible commits of recently read repositories, by refs state.
#[derive(Debug, Default)]
pub struct VisibleCache {
    entries: Mutex<VecDeque<(String, Arc<Reachable>)>>,
}

impl VisibleCache {
    /// What the refs of `snapshot` reach in `repo` (whose objects `db` holds).
    pub async fn get(
        &self,
        repo: &Repo,
        snapshot: &refs::Snapshot,
        db: &ObjectDb,
    ) -> Result<Arc<Reachable>, VisibleError> {
        let key = format!("{}@{}", repo.keys.prefix(), snapshot.content_id);
        if let Some(found) = self.find(&key) {
            return Ok(found);
        }
        let (db, snapshot) = (db.clone(), snapshot.clone());
        let reachable = tokio::task::spawn_blocking(move || Reachable::of(&db.reader(), &snapshot))
            .await
            .map_err(|e| VisibleError::Task(e.to_string()))??;
        let reachable = Arc::new(reachable);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(k, _)| *k != key);
        entries.push_front((key, reachable.clone()));
        entries.truncate(KEPT);
        Ok(reachable)
    }

    fn find(&self, key: &str) -> Option<Arc<Reachable>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }
}

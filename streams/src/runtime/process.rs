//! The instance's process id, as Kafka Streams keeps it in
//! `<state.dir>/<application.id>/kafka-streams-process-metadata`: a UUID made on the
//! first start and read back on later ones, so a restarted instance uses the same
//! transactional ids under exactly-once and fences (aborts) what its previous life
//! left open instead of waiting for the transaction timeout.

use std::path::Path;

use crate::error::{Error, Result};

const FILE: &str = "kafka-streams-process-metadata";

pub(crate) fn process_id(app_dir: &Path) -> Result<String> {
    let path = app_dir.join(FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("processId")?.as_str().map(str::to_string));
        if let Some(id) = id.filter(|id| uuid::Uuid::parse_str(id).is_ok()) {
            return Ok(id);
        }
        tracing::warn!(file = %path.display(), "unreadable process metadata: making a new process id");
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::create_dir_all(app_dir).map_err(|e| Error::io(app_dir.display(), e))?;
    let tmp = path.with_extension("tmp");
    let body = serde_json::json!({ "processId": id }).to_string();
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(path.display(), e))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_id_is_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::process_id(dir.path()).unwrap();
        assert_eq!(super::process_id(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join(super::FILE), "garbage").unwrap();
        let fresh = super::process_id(dir.path()).unwrap();
        assert_ne!(fresh, first);
        assert_eq!(super::process_id(dir.path()).unwrap(), fresh);
    }
}

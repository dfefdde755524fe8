//! `flotilla rollout undo NAME [--to-revision N]`: an earlier release runs in place of the
//! spec's pod template, released like any other (steps and gates) but without pauses, and
//! stays until the spec asks for another revision.
//!
//! The spec is not rewritten: it is its authors' (and their GitOps tool's), who are told
//! by the status, and `status.rollout.undo` holds the template in effect, so an operator
//! restarted mid-undo resumes it. The template comes from the ReplicaSet the stable
//! Deployment kept of that revision (`revisionHistoryLimit` of them, as many as the
//! history), or from the stable template when it is that one; with config snapshots it
//! reads the copies of its release, which the history keeps.

use serde_json::Value;

use crate::api::{RolloutStatus, UndoTarget, labels};

use super::machine::Notice;

/// A fresh `flotilla.dev/undo` annotation: the revision asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    /// The annotation's value, recorded once acted on.
    pub value: String,
    pub revision: String,
}

/// The undo asked for and the template the controller found of its revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub asked: Asked,
    /// The template, or why there is none.
    pub found: Result<Value, String>,
}

/// The undo asked by the annotation `value`, unless already acted on. The value is
/// `<revision>@<when>`: the same revision asked twice is two requests.
pub fn asked(value: Option<&str>, previous: Option<&RolloutStatus>) -> Option<Asked> {
    let value = value?;
    let handled = previous.and_then(|p| p.handled_undo.as_deref());
    if handled == Some(value) {
        return None;
    }
    let revision = value
        .split_once('@')
        .map_or(value, |(revision, _)| revision);
    Some(Asked {
        value: value.to_string(),
        revision: revision.trim().to_string(),
    })
}

/// What this pass runs: the undo in effect, the annotation value acted on, and what to
/// announce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolved {
    pub target: Option<UndoTarget>,
    pub handled: Option<String>,
    pub notice: Option<Notice>,
    /// The release this pass decides is an undo's (to an earlier revision, or back to the
    /// spec's own): it skips its pauses.
    pub fast: bool,
}

/// The undo in effect when the spec asks for `planned`: the one in the status while the
/// spec has not changed since, replaced by a new request (or ended by one for the spec's
/// own revision).
pub fn resolve(
    previous: Option<&RolloutStatus>,
    planned: &str,
    request: Option<Request>,
) -> Resolved {
    let mut resolved = Resolved {
        target: previous
            .and_then(|p| p.undo.clone())
            .filter(|undo| undo.spec_revision == planned && undo.revision != planned),
        handled: previous.and_then(|p| p.handled_undo.clone()),
        notice: None,
        fast: false,
    };
    resolved.fast = resolved.target.is_some();
    let Some(Request { asked, found }) = request else {
        return resolved;
    };
    resolved.handled = Some(asked.value);
    let revision = asked.revision;
    if revision == planned {
        resolved.target = None;
        resolved.fast = true;
        resolved.notice = Some(Notice {
            warning: false,
            reason: "Undo",
            note: format!("undo to revision {revision}: the spec's own, which runs again"),
        });
        return resolved;
    }
    match found {
        Ok(mut template) => {
            // The ReplicaSet's own label: the Deployment controller sets it.
            if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
                labels.remove("pod-template-hash");
            }
            let template_revision = template["metadata"]["labels"][labels::REVISION].as_str();
            if template_revision != Some(revision.as_str()) {
                resolved.notice = Some(refused(
                    &revision,
                    "its template does not carry that revision",
                ));
                return resolved;
            }
            resolved.notice = Some(Notice {
                warning: false,
                reason: "Undo",
                note: format!(
                    "undo to revision {revision} ({}): released without pauses, until the spec changes",
                    image_of(&template).unwrap_or("?")
                ),
            });
            resolved.target = Some(UndoTarget {
                revision,
                spec_revision: planned.to_string(),
                template,
            });
            resolved.fast = true;
        }
        Err(why) => resolved.notice = Some(refused(&revision, &why)),
    }
    resolved
}

fn refused(revision: &str, why: &str) -> Notice {
    Notice {
        warning: true,
        reason: "UndoFailed",
        note: format!("undo to revision {revision}: {why}; nothing changed"),
    }
}

/// The image of a pod template's first container.
pub fn image_of(template: &Value) -> Option<&str> {
    template["spec"]["containers"][0]["image"].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(revision: &str) -> Value {
        json!({"metadata": {"labels": {"flotilla.dev/revision": revision, "pod-template-hash": "x"}},
               "spec": {"containers": [{"name": "app", "image": format!("app:{revision}")}]}})
    }

    fn status(undo: Option<UndoTarget>, handled: Option<&str>) -> RolloutStatus {
        RolloutStatus {
            undo,
            handled_undo: handled.map(str::to_string),
            ..RolloutStatus::default()
        }
    }

    #[test]
    fn an_annotation_is_acted_on_once() {
        let asked = asked(Some("r1@2026-12-07T10:00:00Z"), None).unwrap();
        assert_eq!(asked.revision, "r1");
        let handled = status(None, Some("r1@2026-12-07T10:00:00Z"));
        assert_eq!(
            super::asked(Some("r1@2026-12-07T10:00:00Z"), Some(&handled)),
            None
        );
        assert!(super::asked(Some("r1@2026-12-07T10:05:00Z"), Some(&handled)).is_some());
        assert_eq!(super::asked(None, None), None);
    }

    #[test]
    fn an_undo_runs_until_the_spec_changes() {
        let request = Request {
            asked: asked(Some("r1@t"), None).unwrap(),
            found: Ok(template("r1")),
        };
        let resolved = resolve(None, "r2", Some(request));
        let target = resolved.target.clone().unwrap();
        assert_eq!(
            (target.revision.as_str(), target.spec_revision.as_str()),
            ("r1", "r2")
        );
        assert_eq!(
            target.template["metadata"]["labels"].get("pod-template-hash"),
            None
        );
        assert_eq!(resolved.handled.as_deref(), Some("r1@t"));
        assert_eq!(resolved.notice.unwrap().reason, "Undo");
        // The next pass keeps it; a spec asking for r3 ends it.
        let previous = status(resolved.target, resolved.handled.as_deref());
        assert!(resolve(Some(&previous), "r2", None).target.is_some());
        assert_eq!(resolve(Some(&previous), "r3", None).target, None);
    }

    #[test]
    fn an_undo_to_the_spec_ends_one_and_a_missing_revision_changes_nothing() {
        let previous = status(
            Some(UndoTarget {
                revision: "r1".into(),
                spec_revision: "r2".into(),
                template: template("r1"),
            }),
            Some("r1@t"),
        );
        let back = Request {
            asked: asked(Some("r2@u"), Some(&previous)).unwrap(),
            found: Err("unused".into()),
        };
        let resolved = resolve(Some(&previous), "r2", Some(back));
        assert_eq!(resolved.target, None);
        assert_eq!(resolved.handled.as_deref(), Some("r2@u"));
        let gone = Request {
            asked: asked(Some("r0@v"), Some(&previous)).unwrap(),
            found: Err("no ReplicaSet of it is left".into()),
        };
        let resolved = resolve(Some(&previous), "r2", Some(gone));
        assert_eq!(resolved.target, previous.undo);
        let notice = resolved.notice.unwrap();
        assert!(
            notice.warning && notice.note.contains("no ReplicaSet"),
            "{notice:?}"
        );
        let wrong = Request {
            asked: asked(Some("r0@w"), None).unwrap(),
            found: Ok(template("r9")),
        };
        assert_eq!(resolve(None, "r2", Some(wrong)).target, None);
    }
}

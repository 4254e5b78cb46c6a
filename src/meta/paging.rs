//! Meta's cursor paging, as every Graph listing answers it.

use serde_json::Value;

/// The `after` cursor that leads to the next page, when there is one.
/// Meta's `paging.next` URL is never fetched as such (it may carry a token);
/// its presence only says that `cursors.after` leads further.
pub fn next_cursor(page: &Value) -> Option<String> {
    page.pointer("/paging/next")?;
    let data = page.get("data").and_then(Value::as_array)?;
    if data.is_empty() {
        return None;
    }
    page.pointer("/paging/cursors/after")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_next_page_needs_both_next_and_an_after_cursor() {
        let more = json!({"data": [1], "paging": {"cursors": {"after": "c2"}, "next": "https://x/?access_token=T"}});
        assert_eq!(next_cursor(&more).as_deref(), Some("c2"));
        let last = json!({"data": [1], "paging": {"cursors": {"after": "c2"}}});
        assert_eq!(next_cursor(&last), None);
        let no_cursor = json!({"data": [1], "paging": {"next": "https://x/"}});
        assert_eq!(next_cursor(&no_cursor), None);
        let empty =
            json!({"data": [], "paging": {"cursors": {"after": "c2"}, "next": "https://x/"}});
        assert_eq!(next_cursor(&empty), None, "an empty page ends the listing");
    }
}

use super::*;

fn ok(v: Value) -> Outbound {
    prepare(v.clone()).unwrap_or_else(|e| panic!("{v} refused: {e}"))
}

/// The field a refusal names.
fn refused(v: Value) -> String {
    match prepare(v.clone()) {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("{v} was not refused: {other:?}"),
    }
}

fn long(n: usize) -> String {
    "é".repeat(n)
}

#[test]
fn a_text_gets_messaging_product_and_a_normalised_to() {
    let m = ok(
        json!({"to": "+420 777 123 456", "type": "text", "text": {"body": "hi", "preview_url": true}}),
    );
    assert_eq!(m.recipient, Recipient::Phone("420777123456".into()));
    assert_eq!(
        m.body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+420777123456",
               "type": "text", "text": {"body": "hi", "preview_url": true}})
    );
}

#[test]
fn a_bsuid_recipient_goes_in_recipient() {
    let m = ok(json!({"recipient": "US.13491208655302741918", "text": {"body": "hi"}}));
    assert_eq!(m.message_type, "text");
    assert_eq!(m.body["recipient"], "US.13491208655302741918");
    assert!(m.body.get("to").is_none());
}

#[test]
fn recipients_are_required_once() {
    assert_eq!(
        refused(json!({"type": "text", "text": {"body": "x"}})),
        "to"
    );
    assert_eq!(
        refused(json!({"to": "+420777123456", "recipient": "US.1", "text": {"body": "x"}})),
        "to"
    );
    assert_eq!(refused(json!({"to": "hello", "text": {"body": "x"}})), "to");
    assert_eq!(
        refused(json!({"to": 420777123456u64, "text": {"body": "x"}})),
        "to"
    );
    assert_eq!(
        refused(json!({"recipient": "nobody", "text": {"body": "x"}})),
        "recipient"
    );
}

#[test]
fn text_needs_a_body_within_4096_characters() {
    let to = "+420777123456";
    assert_eq!(refused(json!({"to": to, "type": "text"})), "text");
    assert_eq!(
        refused(json!({"to": to, "type": "text", "text": {}})),
        "text.body"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "text", "text": {"body": "  "}})),
        "text.body"
    );
    ok(json!({"to": to, "type": "text", "text": {"body": long(4096)}}));
    assert_eq!(
        refused(json!({"to": to, "type": "text", "text": {"body": long(4097)}})),
        "text.body"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "text", "text": {"body": "x", "preview_url": "yes"}})),
        "text.preview_url"
    );
    assert_eq!(refused(json!({"to": to, "type": "fax"})), "type");
}

#[test]
fn media_by_id_or_link_with_captions_where_meta_shows_them() {
    let to = "+420777123456";
    ok(json!({"to": to, "type": "image", "image": {"id": "1234", "caption": long(1024)}}));
    ok(json!({"to": to, "type": "video", "video": {"link": "https://x.example/v.mp4"}}));
    ok(
        json!({"to": to, "type": "document", "document": {"id": "1", "filename": "offer.pdf", "caption": "Offer"}}),
    );
    ok(json!({"to": to, "type": "audio", "audio": {"id": "1"}}));
    ok(json!({"to": to, "type": "sticker", "sticker": {"link": "https://x.example/s.webp"}}));
    assert_eq!(
        refused(json!({"to": to, "type": "image", "image": {"id": "1", "caption": long(1025)}})),
        "image.caption"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "image", "image": {}})),
        "image.id"
    );
    assert_eq!(
        refused(
            json!({"to": to, "type": "image", "image": {"id": "1", "link": "https://x.example/a.png"}})
        ),
        "image.id"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "image", "image": {"link": "ftp://x/a.png"}})),
        "image.link"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "audio", "audio": {"id": "1", "caption": "no"}})),
        "audio.caption"
    );
    assert_eq!(
        refused(
            json!({"to": to, "type": "document", "document": {"id": "1", "filename": long(241)}})
        ),
        "document.filename"
    );
}

#[test]
fn location_contacts_reaction_and_replies() {
    let to = "+420777123456";
    ok(
        json!({"to": to, "type": "location", "location": {"latitude": 50.08, "longitude": "14.42", "name": "Prague"}}),
    );
    assert_eq!(
        refused(
            json!({"to": to, "type": "location", "location": {"latitude": 91, "longitude": 0}})
        ),
        "location.latitude"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "location", "location": {"latitude": 1}})),
        "location.longitude"
    );
    ok(
        json!({"to": to, "type": "contacts", "contacts": [{"name": {"formatted_name": "Jana"}, "phones": [{"phone": "+420777000111"}]}]}),
    );
    assert_eq!(
        refused(json!({"to": to, "type": "contacts", "contacts": []})),
        "contacts"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "contacts", "contacts": [{"name": {}}]})),
        "contacts[0].name.formatted_name"
    );
    ok(json!({"to": to, "type": "reaction", "reaction": {"message_id": "wamid.1", "emoji": "👍"}}));
    ok(json!({"to": to, "type": "reaction", "reaction": {"message_id": "wamid.1", "emoji": ""}}));
    assert_eq!(
        refused(json!({"to": to, "type": "reaction", "reaction": {"emoji": "👍"}})),
        "reaction.message_id"
    );
    let reply = ok(
        json!({"to": to, "type": "text", "text": {"body": "yes"}, "context": {"message_id": "wamid.9"}}),
    );
    assert_eq!(reply.body["context"]["message_id"], "wamid.9");
    assert_eq!(
        refused(json!({"to": to, "type": "text", "text": {"body": "x"}, "context": {}})),
        "context.message_id"
    );
}

#[test]
fn templates_need_a_name_and_a_language() {
    let to = "+420777123456";
    ok(
        json!({"to": to, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Jana"}]}]}}),
    );
    assert_eq!(
        refused(json!({"to": to, "type": "template", "template": {"language": {"code": "en_US"}}})),
        "template.name"
    );
    assert_eq!(
        refused(json!({"to": to, "type": "template", "template": {"name": "hello_world"}})),
        "template.language"
    );
    assert_eq!(
        refused(
            json!({"to": to, "type": "template", "template": {"name": "t", "language": {"code": "en"}, "components": {}}})
        ),
        "template.components"
    );
}

fn buttons(n: usize, title: &str) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": title}}))
        .collect();
    json!({"to": "+420777123456", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick one"}, "action": {"buttons": list}}})
}

#[test]
fn reply_buttons_one_to_three_with_short_titles() {
    ok(buttons(3, &long(20)));
    assert_eq!(refused(buttons(4, "ok")), "interactive.action.buttons");
    assert_eq!(refused(buttons(0, "ok")), "interactive.action.buttons");
    assert_eq!(
        refused(buttons(1, &long(21))),
        "interactive.action.buttons[0].reply.title"
    );
    let mut twice = buttons(2, "ok");
    twice["interactive"]["action"]["buttons"][1]["reply"]["id"] = json!("b0");
    assert_eq!(refused(twice), "interactive.action.buttons[1].reply.id");
    let mut no_body = buttons(1, "ok");
    no_body["interactive"]
        .as_object_mut()
        .unwrap()
        .remove("body");
    assert_eq!(refused(no_body), "interactive.body.text");
    let mut header = buttons(1, "ok");
    header["interactive"]["header"] = json!({"type": "text", "text": long(61)});
    assert_eq!(refused(header), "interactive.header.text");
    let mut footer = buttons(1, "ok");
    footer["interactive"]["footer"] = json!({"text": long(61)});
    assert_eq!(refused(footer), "interactive.footer.text");
    let mut image = buttons(1, "ok");
    image["interactive"]["header"] = json!({"type": "image", "image": {"id": "1"}});
    ok(image);
}

fn list(rows_per_section: &[usize]) -> Value {
    let sections: Vec<Value> = rows_per_section
        .iter()
        .enumerate()
        .map(|(s, n)| {
            let rows: Vec<Value> = (0..*n)
                .map(|r| json!({"id": format!("r{s}-{r}"), "title": "Row", "description": "d"}))
                .collect();
            json!({"title": format!("Section {s}"), "rows": rows})
        })
        .collect();
    json!({"to": "+420777123456", "type": "interactive", "interactive": {
        "type": "list", "body": {"text": "Menu"}, "action": {"button": "Choose", "sections": sections}}})
}

#[test]
fn lists_have_at_most_ten_rows_in_all() {
    ok(list(&[5, 5]));
    assert_eq!(refused(list(&[6, 5])), "interactive.action.sections");
    assert_eq!(refused(list(&[])), "interactive.action.sections");
    assert_eq!(refused(list(&[0])), "interactive.action.sections[0].rows");
    let mut long_row = list(&[1]);
    long_row["interactive"]["action"]["sections"][0]["rows"][0]["title"] = json!(long(25));
    assert_eq!(
        refused(long_row),
        "interactive.action.sections[0].rows[0].title"
    );
    let mut long_button = list(&[1]);
    long_button["interactive"]["action"]["button"] = json!(long(21));
    assert_eq!(refused(long_button), "interactive.action.button");
    let mut image_header = list(&[1]);
    image_header["interactive"]["header"] = json!({"type": "image", "image": {"id": "1"}});
    assert_eq!(refused(image_header), "interactive.header.type");
}

#[test]
fn cta_url_needs_a_short_label_and_a_url() {
    let cta = |text: &str, url: &str| {
        json!({"to": "+420777123456", "type": "interactive", "interactive": {
            "type": "cta_url", "body": {"text": "See it"},
            "action": {"name": "cta_url", "parameters": {"display_text": text, "url": url}}}})
    };
    ok(cta("Open", "https://shop.example/o/1"));
    assert_eq!(
        refused(cta(&long(21), "https://shop.example")),
        "interactive.action.parameters.display_text"
    );
    assert_eq!(
        refused(cta("Open", "javascript:alert(1)")),
        "interactive.action.parameters.url"
    );
}

#[test]
fn a_flow_message_names_its_flow_and_a_short_button_and_meta_s_version() {
    let flow = |parameters: Value| {
        json!({"to": "+420777123456", "type": "interactive", "interactive": {
            "type": "flow", "body": {"text": "Book a table"},
            "action": {"name": "flow", "parameters": parameters}}})
    };
    ok(flow(
        json!({"flow_message_version": "3", "flow_id": "1197715005513101",
        "flow_token": "t-1", "flow_cta": "Book now", "flow_action": "navigate",
        "flow_action_payload": {"screen": "BOOKING", "data": {"party": 2}}}),
    ));
    ok(flow(
        json!({"flow_message_version": "3", "flow_name": "booking", "flow_cta": "Book",
        "flow_action": "data_exchange"}),
    ));
    let p = "interactive.action.parameters";
    for (parameters, field) in [
        (
            json!({"flow_id": "1", "flow_cta": "Book"}),
            format!("{p}.flow_message_version"),
        ),
        (
            json!({"flow_message_version": "3", "flow_cta": "Book"}),
            format!("{p}.flow_id"),
        ),
        (
            json!({"flow_message_version": "3", "flow_id": "1", "flow_cta": long(21)}),
            format!("{p}.flow_cta"),
        ),
        (
            json!({"flow_message_version": "3", "flow_id": "1", "flow_cta": "Go", "flow_action": "open"}),
            format!("{p}.flow_action"),
        ),
        (
            json!({"flow_message_version": "3", "flow_id": "1", "flow_cta": "Go", "flow_action_payload": {}}),
            format!("{p}.flow_action_payload.screen"),
        ),
    ] {
        assert_eq!(refused(flow(parameters)), field);
    }
    let mut no_body = flow(json!({"flow_message_version": "3", "flow_id": "1", "flow_cta": "Go"}));
    no_body["interactive"]
        .as_object_mut()
        .unwrap()
        .remove("body");
    assert_eq!(refused(no_body), "interactive.body.text");
}

#[test]
fn a_missing_type_is_taken_from_the_one_content_present() {
    assert_eq!(
        ok(json!({"to": "+420777123456", "image": {"id": "1"}})).message_type,
        "image"
    );
    assert_eq!(refused(json!({"to": "+420777123456"})), "type");
    assert_eq!(refused(json!(["not", "an", "object"])), "body");
}

#[test]
fn a_group_send_keeps_its_recipient_type_and_the_group_id_as_to() {
    let m = ok(
        json!({"recipient_type": "group", "to": " G1_x= ", "type": "template",
        "template": {"name": "launch", "language": {"code": "en"}}}),
    );
    assert_eq!(m.recipient, Recipient::Group("G1_x=".into()));
    assert_eq!(m.body["recipient_type"], "group");
    assert_eq!(m.body["to"], "G1_x=");
    let explicit =
        ok(json!({"recipient_type": "individual", "to": "420777123456", "text": {"body": "hi"}}));
    assert_eq!(explicit.body["recipient_type"], "individual");
    for (v, named) in [
        (
            json!({"recipient_type": "group", "text": {"body": "x"}}),
            "to",
        ),
        (
            json!({"recipient_type": "group", "to": "a/b", "text": {"body": "x"}}),
            "to",
        ),
        (
            json!({"recipient_type": "group", "to": "G1", "type": "location",
                "location": {"latitude": 1.0, "longitude": 2.0}}),
            "type",
        ),
        (
            json!({"recipient_type": 7, "to": "G1", "text": {"body": "x"}}),
            "recipient_type",
        ),
        (
            json!({"recipient_type": "all", "to": "G1", "text": {"body": "x"}}),
            "recipient_type",
        ),
    ] {
        assert_eq!(refused(v.clone()), named, "{v}");
    }
}

#[test]
fn a_call_permission_request_has_a_body_and_metas_fixed_action() {
    let request = |interactive: Value| json!({"to": "+420777123456", "type": "interactive", "interactive": interactive});
    let m = ok(request(json!({
        "type": "call_permission_request",
        "body": {"text": "May we call you about your order?"},
        "action": {"name": "call_permission_request"}
    })));
    assert_eq!(
        m.body["interactive"]["action"]["name"],
        "call_permission_request"
    );
    assert_eq!(
        refused(request(
            json!({"type": "call_permission_request", "action": {"name": "call_permission_request"}})
        )),
        "interactive.body.text"
    );
    assert_eq!(
        refused(request(
            json!({"type": "call_permission_request", "body": {"text": "May we call?"}, "action": {"name": "call"}})
        )),
        "interactive.action.name"
    );
}

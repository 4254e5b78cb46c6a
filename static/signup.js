// Embedded Signup: Meta's wizard through the Facebook JS SDK. The login returns a
// code; the wizard's WA_EMBEDDED_SIGNUP message names the WABA and phone number
// picked. Both go to the gateway's callback in a POST form (not in the URL).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("wabridge-config").textContent);
  var form = document.getElementById("finish");
  var button = document.getElementById("start");
  var status = document.getElementById("status");
  var session = {};
  var sent = false;

  // Only Meta's own pages may tell us what was picked.
  function fromFacebook(origin) {
    try {
      var url = new URL(origin);
      var host = url.hostname;
      return url.protocol === "https:" && (host === "facebook.com" || host.slice(-13) === ".facebook.com");
    } catch (e) {
      return false;
    }
  }

  window.addEventListener("message", function (event) {
    if (!fromFacebook(event.origin)) return;
    var msg;
    try {
      msg = typeof event.data === "string" ? JSON.parse(event.data) : event.data;
    } catch (e) {
      return;
    }
    if (!msg || msg.type !== "WA_EMBEDDED_SIGNUP") return;
    var data = msg.data || {};
    if (msg.event === "CANCEL") {
      session.cancelled = true;
      session.step = data.current_step ? String(data.current_step) : "";
    } else if (msg.event === "ERROR") {
      session.error = data.error_message ? String(data.error_message) : "the signup wizard reported an error";
    } else if (String(msg.event).indexOf("FINISH") === 0) {
      session.waba_id = data.waba_id ? String(data.waba_id) : "";
      session.phone_number_id = data.phone_number_id ? String(data.phone_number_id) : "";
    }
  });

  function submit(fields) {
    if (sent) return;
    sent = true;
    Object.keys(fields).forEach(function (name) {
      if (form.elements[name]) form.elements[name].value = fields[name] || "";
    });
    status.textContent = "Finishing the connection…";
    form.submit();
  }

  function finished(response) {
    var code = response && response.authResponse && response.authResponse.code;
    if (code) {
      // The wizard's message may trail the login callback by a moment.
      var wait = session.waba_id ? 0 : 1500;
      setTimeout(function () {
        submit({ code: code, waba_id: session.waba_id, phone_number_id: session.phone_number_id });
      }, wait);
    } else if (session.error) {
      submit({ error: "signup_error", error_description: session.error });
    } else {
      var where = session.step ? "closed at step " + session.step : "the login was closed";
      submit({ error: "access_denied", error_description: where });
    }
  }

  window.fbAsyncInit = function () {
    FB.init({ appId: cfg.appId, autoLogAppEvents: true, xfbml: false, version: cfg.graphVersion });
    button.disabled = false;
    status.textContent = "";
  };

  button.addEventListener("click", function () {
    status.textContent = "Waiting for Meta's signup window…";
    FB.login(finished, {
      config_id: cfg.configId,
      response_type: "code",
      override_default_response_type: true,
      // featureType "whatsapp_business_app_onboarding": the connect link asked
      // for a WhatsApp Business app number (coexistence).
      extras: { setup: {}, featureType: cfg.featureType || "", sessionInfoVersion: cfg.sessionInfoVersion }
    });
  });
})();

// wabridge backoffice: copy buttons, the verify-token generator and the live
// setup checklist. Loaded as a file because the pages' CSP forbids inline script.
'use strict';

(function () {
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP fallback: select a hidden textarea and use the old command.
    return new Promise(function (resolve, reject) {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'sr-only';
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand('copy');
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error('copy refused')); }
    });
  }

  function onCopy(button) {
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source) { return; }
    var label = button.textContent;
    copyText(source.textContent.trim()).then(function () {
      button.textContent = 'Copied';
      button.classList.add('copied');
    }, function () {
      // The clipboard is unavailable: select the text so Ctrl+C works.
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      button.textContent = 'Press Ctrl+C';
    });
    setTimeout(function () {
      button.textContent = label;
      button.classList.remove('copied');
    }, 1800);
  }

  // 32 random bytes, base64url: a verify token nobody guesses.
  function onGenerate(button) {
    var input = document.getElementById(button.getAttribute('data-generate'));
    if (!input) { return; }
    var bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    var text = btoa(String.fromCharCode.apply(null, bytes))
      .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    input.value = text;
    input.focus();
    input.select();
  }

  document.addEventListener('click', function (event) {
    var target = event.target.closest('[data-copy], [data-generate]');
    if (!target) { return; }
    event.preventDefault();
    if (target.hasAttribute('data-copy')) { onCopy(target); } else { onGenerate(target); }
  });

  // The checklist is redrawn on the server every few seconds while the page is visible.
  function refreshChecklist(box) {
    if (document.hidden) { return; }
    fetch(box.getAttribute('data-refresh'), { credentials: 'same-origin', cache: 'no-store' })
      .then(function (resp) {
        if (!resp.ok || resp.redirected) { throw new Error('checklist unavailable'); }
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var list = doc.querySelector('.checklist');
        if (list) { box.replaceChildren(document.importNode(list, true)); }
      })
      .catch(function () { /* keep what is shown; the next round tries again */ });
  }

  document.addEventListener('DOMContentLoaded', function () {
    var box = document.querySelector('[data-refresh]');
    if (box) {
      setInterval(function () { refreshChecklist(box); }, 4000);
    }
  });
})();

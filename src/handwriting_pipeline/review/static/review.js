// The review page's keyboard: Enter accepts (or saves what was typed), 1-9 pick a candidate,
// typing corrects, Backspace on the unchanged box goes back, Esc undoes typing, Space shows the
// whole top section. Plain JS; values are only ever shown with textContent.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("data").textContent);
  const box = document.getElementById("value");
  const form = document.getElementById("decide");
  const error = document.getElementById("error");
  const top = document.getElementById("top");
  const toggle = document.getElementById("toggle-top");
  let editing = false;
  let busy = false;

  function startEditing(replaceWith) {
    editing = true;
    box.classList.add("editing");
    box.focus();
    if (replaceWith !== undefined) box.value = replaceWith;
    box.setSelectionRange(box.value.length, box.value.length);
  }
  function stopEditing() {
    editing = false;
    box.value = data.chosen;
    box.classList.remove("editing");
    clearError();
    box.blur();
  }
  // Why a decision was not saved, right under the box (as text: textContent, never HTML).
  function showError(text) {
    error.textContent = text;
    error.hidden = false;
    box.setAttribute("aria-invalid", "true");
    busy = false;
  }
  function clearError() {
    error.textContent = "";
    error.hidden = true;
    box.removeAttribute("aria-invalid");
  }
  function reason(body, status) {
    const detail = body.detail || body.error;
    if (Array.isArray(detail)) return detail.map((d) => (d && d.msg) || String(d)).join("; ");
    return detail ? String(detail) : "the server answered " + status;
  }
  function go(index, conflict) {
    let url = index === null || index === undefined ? "/done" : "/item/" + index;
    if (conflict) url += "?conflict=" + encodeURIComponent(conflict);
    window.location.assign(url);
  }
  async function decide(value, action, candidate) {
    if (busy) return;
    busy = true;
    let response;
    try {
      response = await fetch("/api/decide", {
        method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
        body: JSON.stringify({index: data.index, field: data.field, value: value, action: action, candidate: candidate || null}),
      });
    } catch (err) {
      showError("not saved: the server did not answer (" + err + "); try again");
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError("Not saved: " + reason(body, response.status) + ". Correct the value and press Enter again.");
      return;
    }
    let conflict = null;
    if (body.conflicts && body.conflicts.length) {
      conflict = "Recorded, but another reviewer decided " + data.field + " of the last form differently: " +
        body.conflicts.map((c) => "'" + c.value + "' (" + c.reviewer + ")").join(", ") + ". Both decisions are kept.";
    }
    go(body.next, conflict);
  }
  function pick(n) {
    const option = data.options[n - 1];
    if (!option) return false;
    decide(option.value, "pick", option.engines.join(";"));
    return true;
  }
  function submit() {
    const value = box.value;
    decide(value, value.trim() === data.chosen ? "accept" : "correct");
  }
  function back() {
    if (data.previous !== null) go(data.previous);
  }
  function toggleTop() {
    if (top) top.hidden = !top.hidden;
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  box.addEventListener("focus", () => { if (!editing) startEditing(); });
  box.addEventListener("input", () => { if (!error.hidden) clearError(); });
  document.querySelectorAll("button.option").forEach((button) => {
    button.addEventListener("click", () => pick(Number(button.dataset.n)));
  });
  if (toggle) toggle.addEventListener("click", toggleTop);

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (editing) {
      if (key === "Escape") { event.preventDefault(); stopEditing(); }
      else if (key === "Backspace" && box.value === "") { event.preventDefault(); back(); }
      return; // Enter submits the form; everything else edits the box
    }
    if (key === "Enter") { event.preventDefault(); submit(); }
    else if (/^[1-9]$/.test(key) && data.options[Number(key) - 1]) { event.preventDefault(); pick(Number(key)); }
    else if (key === "Backspace") { event.preventDefault(); back(); }
    else if (key === " ") { event.preventDefault(); toggleTop(); }
    else if (key.length === 1) { event.preventDefault(); startEditing(key); }
  });
  box.blur();
})();

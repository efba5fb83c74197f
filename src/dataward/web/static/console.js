// dataward console: keyboard shortcuts for the label audit and in-page inclusion-proof verification.
// No libraries: SHA-256 comes from the browser's WebCrypto (crypto.subtle.digest).
"use strict";

(function () {
  const enc = new TextEncoder();

  function b64ToBytes(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function concat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }
  const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

  // RFC 9162 section 2.1.3.2: verify an inclusion proof; returns the computed root.
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index < 0 || index >= size) throw new Error("leaf index " + index + " out of range for size " + size);
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) throw new Error("proof is longer than the tree is deep");
      if ((fn & 1) === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1) === 0) {
          while ((fn & 1) === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("proof is shorter than the tree is deep");
    return r;
  }

  // C2SP signed note: text, blank line, "— name base64(keyid(4) || signature(64))" lines.
  async function checkNoteSignature(note, verifierKey) {
    const plus = verifierKey.split("+");
    if (plus.length !== 3 || !crypto.subtle || !crypto.subtle.importKey) return "not checked";
    const keyBytes = b64ToBytes(plus[2]);
    if (keyBytes[0] !== 1) return "not checked (not an Ed25519 key)";
    const sep = note.indexOf("\n\n");
    const text = note.slice(0, sep + 1);
    const line = note.slice(sep + 2).split("\n").find((l) => l.startsWith("\u2014 " + plus[0] + " "));
    if (!line) return "no signature by the log key";
    const sig = b64ToBytes(line.split(" ")[2]);
    if (hex(sig.slice(0, 4)) !== plus[1].toLowerCase()) return "signature key id differs";
    let key;
    try {
      key = await crypto.subtle.importKey("raw", keyBytes.slice(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      return "not checked (this browser has no Ed25519)";
    }
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, sig.slice(4), enc.encode(text));
    return ok ? "Ed25519 signature verified" : "SIGNATURE INVALID";
  }

  async function verifyProof(box) {
    const out = document.getElementById("proof-result");
    const detail = document.getElementById("proof-detail");
    try {
      const res = await fetch(box.dataset.proofUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error("proof request failed: HTTP " + res.status);
      const data = await res.json();
      const p = data.proof;
      // the leaf commits to the signed entry: SHA-256(0x00 || {"entry":<body>,"signature":"<b64>"})
      const leafData = enc.encode('{"entry":' + p.entry + ',"signature":"' + p.signature + '"}');
      const leaf = await sha256(concat(new Uint8Array([0]), leafData));
      if (!equal(leaf, b64ToBytes(p.leaf_hash))) throw new Error("the entry does not hash to the proof's leaf");
      const lines = p.checkpoint.split("\n");
      if (parseInt(lines[1], 10) !== p.tree_size) throw new Error("checkpoint size differs from the proof's tree size");
      const root = b64ToBytes(lines[2]);
      const computed = await rootFromInclusion(p.index, p.tree_size, leaf, p.proof.map(b64ToBytes));
      if (!equal(computed, root)) throw new Error("proof leads to root " + hex(computed).slice(0, 16) + "…, checkpoint has " + hex(root).slice(0, 16) + "…");
      const sig = await checkNoteSignature(p.checkpoint, data.log_key);
      out.textContent = "verified";
      out.className = "ok";
      detail.textContent = "leaf " + hex(leaf).slice(0, 16) + "… + " + p.proof.length + " hashes → root " + hex(root).slice(0, 16) + "… of checkpoint size " + p.tree_size + "; checkpoint: " + sig;
    } catch (e) {
      out.textContent = "FAILED";
      out.className = "bad";
      detail.textContent = String(e.message || e);
    }
  }

  // --- label audit: o ok, w wrong label (then the label), m malicious, u unsure, n next, z undo ---------------
  // No reloads: a decision updates the page at once and is sent in the background, in order (the queue of
  // unsent decisions is shown), so keys typed while a request is under way act on the record on screen.
  function setupReview(box) {
    const form = document.getElementById("decide-form");
    if (!form) return;
    const batch = box.dataset.batch;
    const offline = box.dataset.mode === "offline";
    const labelBox = document.getElementById("label-box");
    const labelInput = document.getElementById("new-label");
    const undoButton = document.getElementById("undo");
    const pendingBox = document.getElementById("pending");
    const errorBox = document.getElementById("review-error");
    const items = Array.from(document.querySelectorAll("#review-items .review-item"));
    const storeKey = "dataward-decisions:" + batch;
    const stored = () => JSON.parse(localStorage.getItem(storeKey) || "[]");
    const undo = [];
    let index = Math.max(0, items.findIndex((el) => !el.hidden));
    let sending = Promise.resolve();
    let pending = 0;

    function row(record) { return document.querySelector('#queue tr[data-record="' + record + '"]'); }
    function show(i) {
      items.forEach((el, k) => { el.hidden = k !== i; });
      document.querySelectorAll("#queue tr.current").forEach((r) => r.classList.remove("current"));
      const done = i < 0;
      form.hidden = done;
      document.getElementById("done-box").hidden = !done;
      if (done) { box.dataset.record = ""; box.dataset.digest = ""; return; }
      index = i;
      box.dataset.record = items[i].dataset.record;
      box.dataset.digest = items[i].dataset.digest;
      const r = row(items[i].dataset.record);
      if (r) r.classList.add("current");
      labelBox.hidden = true;
    }
    function nextUndecided(from) {
      for (let k = 1; k <= items.length; k++) {
        const i = (from + k) % items.length;
        if (!items[i].dataset.decision) return i;
      }
      return -1;
    }
    function paint(el, decision) {
      el.dataset.decision = decision;
      el.querySelector(".current-decision .value").textContent = decision || "none";
      const r = row(el.dataset.record);
      if (r) r.querySelector("td.decision").textContent = decision || "\u2013";
      const decided = items.filter((x) => x.dataset.decision).length;
      document.getElementById("decided-count").textContent = String(decided);
      document.getElementById("decided-bar").value = decided;
    }
    function send(record, decision) {
      if (offline) {
        const all = stored().filter((d) => String(d.record) !== String(record));
        if (decision) {
          const [d, label] = decision.split(/:(.*)/s);
          const el = items.find((x) => x.dataset.record === String(record));
          all.push({ record: record, decision: d, new_label: label || "", digest: el.dataset.digest });
        }
        localStorage.setItem(storeKey, JSON.stringify(all));
        const count = document.getElementById("offline-count");
        if (count) count.textContent = String(all.length);
        return;
      }
      pending += 1;
      pendingBox.textContent = pending + " decision(s) sending…";
      const body = new URLSearchParams({ csrf: box.dataset.csrf, record: String(record), decision: decision || "withdrawn" });
      sending = sending.then(async () => {
        const res = await fetch("/batches/" + encodeURIComponent(batch) + "/audit/decide", {
          method: "POST", credentials: "same-origin", body: body,
          headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        });
        const data = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(data.error || "HTTP " + res.status);
        const r = row(record);
        if (r) r.querySelector("td.reviewer").textContent = decision ? document.getElementById("principal").textContent : "";
        const est = document.getElementById("estimate");
        if (est && data.estimate_text) est.textContent = data.estimate_text;
      }).catch((e) => {
        errorBox.hidden = false;
        errorBox.textContent = "record " + record + ": not recorded: " + (e.message || e) + " (reload the page)";
      }).finally(() => {
        pending -= 1;
        pendingBox.textContent = pending ? pending + " decision(s) sending…" : "all decisions saved";
      });
    }
    function decide(decision) {
      const el = items[index];
      undo.push({ index: index, previous: el.dataset.decision });
      undoButton.disabled = false;
      paint(el, decision);
      send(el.dataset.record, decision);
      show(nextUndecided(index));
    }
    function takeBack() {
      const last = undo.pop();
      if (!last) return;
      undoButton.disabled = undo.length === 0;
      const el = items[last.index];
      paint(el, last.previous);
      send(el.dataset.record, last.previous);
      show(last.index);
    }
    function key(k) {
      if (k === "z") { takeBack(); return; }
      if (form.hidden) return;
      if (k === "o") decide("ok");
      else if (k === "m") decide("malicious");
      else if (k === "u") decide("unsure");
      else if (k === "n") { const i = nextUndecided(index); show(i < 0 ? (index + 1) % items.length : i); }
      else if (k === "w") { labelBox.hidden = false; labelInput.value = ""; labelInput.focus(); }
    }
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.target === labelInput) {
        if (ev.key === "Enter") {
          ev.preventDefault();
          const label = labelInput.value.trim();
          if (label) { labelInput.blur(); decide("wrong-label:" + label); }
        } else if (ev.key === "Escape") { labelBox.hidden = true; labelInput.blur(); }
        return;
      }
      if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement) return;
      const k = ev.key.toLowerCase();
      if ("owmunz".includes(k) && k.length === 1) { ev.preventDefault(); key(k); }
    });
    for (const b of box.querySelectorAll("button[data-key]")) b.addEventListener("click", () => key(b.dataset.key));
    if (offline) {
      // decisions kept in this browser show as made
      for (const d of stored()) {
        const el = items.find((x) => x.dataset.record === String(d.record));
        if (el) paint(el, d.decision + (d.new_label ? ":" + d.new_label : ""));
      }
      const count = document.getElementById("offline-count");
      if (count) count.textContent = String(stored().length);
      if (items[index] && items[index].dataset.decision) show(nextUndecided(index));
    }
    const dl = document.getElementById("download-decisions");
    if (dl) dl.addEventListener("click", (ev) => {
      ev.preventDefault();
      const q = (s) => '"' + String(s).replace(/"/g, '""') + '"';
      const rows = ["record,decision,new_label,digest"].concat(stored().map((d) => [d.record, d.decision, q(d.new_label), d.digest].join(",")));
      const url = URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
      const a = document.createElement("a");
      a.href = url; a.download = "decisions-" + batch + ".csv"; document.body.appendChild(a); a.click(); a.remove();
      URL.revokeObjectURL(url);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const proof = document.getElementById("proof");
    if (proof) verifyProof(proof);
    const review = document.getElementById("review");
    if (review) setupReview(review);
  });
})();

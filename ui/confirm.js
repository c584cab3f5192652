// A confirmation in a modal <dialog>: focus moves into it, Escape cancels, the question names what will happen.
import { useEffect, useRef } from "preact/hooks";
import { html } from "./html.js";

export function Confirm({ title, children, action, danger = false, onConfirm, onCancel }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog.open) dialog.showModal();
    const cancel = (e) => {
      e.preventDefault();
      onCancel();
    };
    dialog.addEventListener("cancel", cancel);
    return () => dialog.removeEventListener("cancel", cancel);
  }, []);
  return html`<dialog ref=${ref} aria-labelledby="confirm-title" class="confirm">
    <h2 id="confirm-title">${title}</h2>
    <div>${children}</div>
    <div class="buttons">
      <button type="button" onClick=${onCancel} autofocus>Cancel</button>
      <button type="button" class=${danger ? "danger" : ""} onClick=${onConfirm}>${action}</button>
    </div>
  </dialog>`;
}

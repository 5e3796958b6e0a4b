// Confirmation dialogs, notices, and the actions on runs and task instances.

import {h} from './dom.js';
import {ApiError, can, paths, post} from './api.js';

// toast shows a short notice; an error stays until dismissed.
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const close = h('button', {type: 'button', class: 'btn btn-quiet toast-close', 'aria-label': 'dismiss'}, '×');
  const el = h('div', {class: ['toast', 'toast-' + kind], role: kind === 'error' ? 'alert' : 'status'}, h('span', {class: 'toast-text'}, message), close);
  close.addEventListener('click', () => el.remove());
  box.appendChild(el);
  if (kind !== 'error') setTimeout(() => el.remove(), 6000);
}

// confirm asks in a modal <dialog> and resolves to null (cancelled) or {checked} (confirmed,
// with the state of the optional checkbox).
export function confirm({title, body, confirmLabel, dismissLabel, danger, checkbox}) {
  return new Promise((resolve) => {
    const box = checkbox ? h('input', {type: 'checkbox', class: 'confirm-check', checked: !!checkbox.checked}) : null;
    const cancelBtn = h('button', {type: 'submit', value: 'cancel', class: 'btn confirm-cancel', autofocus: true}, dismissLabel || 'Cancel');
    const okBtn = h('button', {type: 'submit', value: 'ok', class: ['btn', danger ? 'btn-danger' : 'btn-primary', 'confirm-ok']}, confirmLabel || 'OK');
    const dlg = h('dialog', {class: 'confirm', 'aria-labelledby': 'confirm-title'},
      h('form', {method: 'dialog'},
        h('h2', {id: 'confirm-title'}, title),
        h('div', {class: 'confirm-body'}, body),
        box ? h('label', {class: 'check'}, box, ' ', checkbox.label) : null,
        h('div', {class: 'buttons'}, cancelBtn, okBtn)));
    dlg.addEventListener('close', () => {
      const ok = dlg.returnValue === 'ok';
      dlg.remove();
      resolve(ok ? {checked: box ? box.checked : false} : null);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

// act runs an action (a function returning post's promise) with its button disabled, and
// reports the outcome. It resolves to the response, or null when the action failed.
export async function act(button, what, fn) {
  if (button) button.disabled = true;
  try {
    const res = await fn();
    if (res.status === 202) {
      toast(what + ' is queued: ' + ((res.data && res.data.error) || 'no active instance has carried it out yet'), 'warn');
    } else {
      toast(what + ': done', 'ok');
    }
    return res;
  } catch (e) {
    if (e instanceof ApiError || e instanceof Error) toast(what + ' failed: ' + e.message, 'error');
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

// operatorButton is a button for an operator action; viewers see it disabled, with the reason.
export function operatorButton(label, props, onclick) {
  const ok = can('operator');
  return h('button', {type: 'button', class: 'btn', ...props, disabled: !ok, title: ok ? props.title : 'needs a token with role operator or admin', onclick}, label);
}

// clearTask asks, then clears a task instance (with downstream if ticked).
export async function clearTask(button, dag, run, task, refresh) {
  const ans = await confirm({
    title: 'Clear task',
    body: [h('p', null, 'Run task ', h('strong', {class: 'name'}, task), ' of run ', h('strong', {class: 'name'}, run), ' again, with a new try?'),
      h('p', {class: 'muted'}, 'A try in flight is stopped first. A finished run runs again.')],
    confirmLabel: 'Clear',
    checkbox: {label: 'Also clear every task downstream of it'},
  });
  if (!ans) return;
  await act(button, 'Clear ' + task, () => post(paths.clear(dag, run, task), {downstream: ans.checked}));
  refresh();
}

// markTask asks, then marks a task instance success or failed.
export async function markTask(button, dag, run, task, state, refresh) {
  const ans = await confirm({
    title: 'Mark task ' + state,
    body: h('p', null, 'Set task ', h('strong', {class: 'name'}, task), ' of run ', h('strong', {class: 'name'}, run), ' to ', h('strong', null, state), ' by hand?'),
    confirmLabel: 'Mark ' + state,
    danger: state === 'failed',
    checkbox: {label: 'Also mark every task downstream of it'},
  });
  if (!ans) return;
  await act(button, 'Mark ' + task + ' ' + state, () => post(paths.mark(dag, run, task), {state, downstream: ans.checked}));
  refresh();
}

// cancelRun asks, then cancels a run.
export async function cancelRun(button, dag, run, refresh) {
  const ans = await confirm({
    title: 'Cancel run',
    body: [h('p', null, 'Cancel run ', h('strong', {class: 'name'}, run), ' of ', h('strong', {class: 'name'}, dag), '?'),
      h('p', {class: 'muted'}, 'Tries in flight are stopped, tasks not started are skipped, and the run fails.')],
    confirmLabel: 'Cancel run',
    dismissLabel: 'Keep running',
    danger: true,
  });
  if (!ans) return;
  await act(button, 'Cancel run', () => post(paths.cancel(dag, run)));
  refresh();
}

/** @module Tests of what a minimal encoder.json leaves out: reader inputs and output told from the graph, the hook from the SAE. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inferReaderInputs, inferReaderOutput, resolveHook, type GraphValue } from './reader-inference.ts'

const ids = (name: string, type = 'int64'): GraphValue => ({ name, type, shape: ['batch', 'tokens'] })
const hidden = (name: string, d: number | string = 16, type = 'float32'): GraphValue => ({
  name,
  type,
  shape: ['batch', 'tokens', d]
})

test('reader inputs are told by their usual names, case-insensitively; names encoder.json gives win', () => {
  assert.deepEqual(inferReaderInputs([ids('input_ids'), ids('attention_mask')], undefined), {
    ids: 'input_ids',
    mask: 'attention_mask'
  })
  assert.deepEqual(inferReaderInputs([ids('Tokens'), ids('mask', 'bool'), ids('position_ids')], undefined), {
    ids: 'Tokens',
    mask: 'mask',
    positions: 'position_ids'
  })
  assert.deepEqual(inferReaderInputs([ids('ids')], {}), { ids: 'ids' })
  assert.deepEqual(inferReaderInputs([ids('x'), ids('attention_mask')], { ids: 'x' }), {
    ids: 'x',
    mask: 'attention_mask'
  })
})

test('reader inputs that cannot be told apart fail with the listing and the field to set', () => {
  assert.throws(
    () => inferReaderInputs([ids('input_ids'), ids('token_type_ids')], undefined),
    /input "token_type_ids" has none of the usual names\. The graph's inputs: input_ids \(int64 \[batch, tokens\]\), token_type_ids \(int64 \[batch, tokens\]\)\. .*Set reader\.inputs in encoder\.json/
  )
  assert.throws(
    () => inferReaderInputs([ids('input_ids'), ids('tokens')], undefined),
    /inputs "input_ids" and "tokens" both look like ids/
  )
  assert.throws(() => inferReaderInputs([ids('attention_mask')], undefined), /no input looks like token ids/)
  assert.throws(
    () => inferReaderInputs([ids('input_ids')], { mask: 'attn' }, [ids('input_ids')]),
    /reader\.inputs\.mask is "attn" but the reader graph has no such input; its inputs: input_ids/
  )
})

test('the reader output is hidden_states.<i> for the hook, the stacked output at i, or the one hidden-state-shaped output', () => {
  const numbered = [
    hidden('hidden_states.0'),
    hidden('hidden_states.1'),
    hidden('hidden_states.2'),
    hidden('logits', 50257)
  ]
  assert.equal(inferReaderOutput(numbered, 'blocks.1.hook_resid_post', 16), 'hidden_states.2')
  assert.equal(inferReaderOutput(numbered, 'blocks.1.hook_resid_pre', 16), 'hidden_states.1')
  assert.equal(inferReaderOutput(numbered, 'layers.0', 16), 'hidden_states.1')
  assert.equal(
    inferReaderOutput([hidden('hidden_states_3'), hidden('hidden_states_4')], 'blocks.3.hook_resid_pre', 16),
    'hidden_states_3'
  )
  const stacked: GraphValue = { name: 'hidden_states', type: 'float32', shape: [5, 'batch', 'tokens', 16] }
  assert.deepEqual(inferReaderOutput([stacked, hidden('logits', 99)], 'blocks.2.hook_resid_post', 16), {
    name: 'hidden_states',
    index: 3
  })
  // one plausible output: the hook cannot be checked against a name, the shape is the evidence
  assert.equal(
    inferReaderOutput([hidden('last_hidden_state'), hidden('logits', 99)], 'blocks.5.hook_mlp_out', 16),
    'last_hidden_state'
  )
  assert.equal(inferReaderOutput([hidden('out', 'd_model')], 'blocks.5.hook_resid_post', 16), 'out')
})

test('an output that cannot be told fails listing the outputs and the field to set', () => {
  assert.throws(
    () => inferReaderOutput([hidden('a'), hidden('b')], 'blocks.0.hook_resid_post', 16),
    /reader\.output cannot be inferred from the reader graph: the hook "blocks\.0\.hook_resid_post" is hidden_states\[1\], and 2 outputs could be its hidden states \(a, b\)\. The graph's outputs: a \(float32 \[batch, tokens, 16\]\), b .*"output": "hidden_states\.1"/
  )
  assert.throws(
    () => inferReaderOutput([hidden('hidden_states.3')], 'blocks.0.hook_resid_post', 16),
    /the only hidden-state output, "hidden_states\.3", is another layer's/
  )
  assert.throws(
    () => inferReaderOutput([hidden('logits', 16), hidden('h', 32)], 'blocks.0.attn.hook_z', 16),
    /the hook "blocks\.0\.attn\.hook_z" is not a residual-stream hook .* no output is shaped like hidden states \[batch, tokens, 16\]/
  )
})

test('a hook in encoder.json must name the hidden state the SAE reads', () => {
  assert.equal(resolveHook('layers.3', 'the sparsify folder name says', undefined), 'layers.3')
  assert.equal(resolveHook('layers.3', 'x', 'blocks.3.hook_resid_post'), 'blocks.3.hook_resid_post')
  assert.equal(resolveHook('layers.3', 'x', 'blocks.4.hook_resid_pre'), 'blocks.4.hook_resid_pre')
  assert.throws(
    () => resolveHook('layers.3', 'the sparsify folder name layers.3 says', 'blocks.3.hook_resid_pre'),
    /reader\.hookName is "blocks\.3\.hook_resid_pre" but the SAE's the sparsify folder name layers\.3 says "layers\.3"/
  )
})

/**
 * @module Refuses early and clearly to run on a Node.js older than the project needs (npm ci's preinstall, npm start,
 * npm run demo), saying what is needed and the one command that gets it. Plain old JavaScript on purpose: it must
 * parse and run on any Node, however old. LATENTBASE_NODE_VERSION=v20.0.0 pretends another version (tests).
 */
'use strict'

var REQUIRED = { major: 22, minor: 5 }

/** [major, minor] of a version string such as 'v20.11.1' or '22.5.0'; null if it is not one. */
function parse(version) {
  var m = /^v?(\d+)\.(\d+)/.exec(String(version))
  return m ? [Number(m[1]), Number(m[2])] : null
}

/** Whether `version` is at least the required one. */
function supported(version) {
  var v = parse(version)
  if (!v) return false
  return v[0] > REQUIRED.major || (v[0] === REQUIRED.major && v[1] >= REQUIRED.minor)
}

/** The one command that installs Node 22 from the npm registry (no other network needed) and puts it first on PATH. */
function installCommand(platform, arch) {
  var os = platform === 'win32' ? 'win' : platform
  var pkg = 'node-' + os + '-' + arch
  var bin = platform === 'win32' ? '~/.node22/node_modules/' + pkg : '~/.node22/node_modules/' + pkg + '/bin'
  return 'npm install --prefix ~/.node22 ' + pkg + '@22 && export PATH=' + bin + ':$PATH'
}

/** What to tell the user running `step` on `version`. */
function refusal(version, step, platform, arch) {
  var needed = REQUIRED.major + '.' + REQUIRED.minor
  return [
    '',
    'Latentbase needs Node.js >= ' +
      needed +
      '; this is Node ' +
      version +
      (step ? ' (while running `npm ' + step + '`)' : '') +
      '.',
    'Its libraries (openai, fauxqs, miniflare, wrangler) need Node 22; on an older one they fail later with unclear errors.',
    'Get Node 22 with one command, then run the step again:',
    '',
    '  ' + installCommand(platform, arch),
    '',
    '(or any Node >= ' + needed + ': nvm install 22, your package manager, https://nodejs.org)',
    ''
  ].join('\n')
}

module.exports = {
  REQUIRED: REQUIRED,
  parse: parse,
  supported: supported,
  installCommand: installCommand,
  refusal: refusal
}

function refuseUnsupported() {
  var version = process.env.LATENTBASE_NODE_VERSION || process.version
  if (supported(version)) return
  var step = process.env.npm_lifecycle_event ? String(process.env.npm_lifecycle_event).replace(/^pre/, '') : ''
  if (step === 'install') step = 'ci / npm install'
  console.error(refusal(version, step, process.platform, process.arch))
  process.exit(1)
}

if (require.main === module) refuseUnsupported()

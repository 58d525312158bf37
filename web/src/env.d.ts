/** @module Ambient types of the web build: Vite's client types (CSS imports). */
/// <reference types="vite/client" />

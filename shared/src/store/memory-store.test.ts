/** @module The in-memory ObjectStore passes the same contract as the disk and S3 stores. */
import { objectStoreContract } from './object-store.contract.ts'
import { MemoryObjectStore } from './memory-store.ts'

objectStoreContract('MemoryObjectStore', { make: async () => new MemoryObjectStore() })

// The code is in ../Shared/VersionedPlugin.cs, built twice (V1, V2) to test hot reload.

using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Acme.Probes.Tests")]

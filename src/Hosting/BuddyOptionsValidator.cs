using Microsoft.Extensions.Options;

namespace Buddy.Hosting;

/// <summary>
/// Checks <see cref="BuddyOptions"/> with the arena's and reporter's own rules, and names each wrong
/// value by its configuration key (<c>Buddy:Arena:Size</c>), so a bad setting fails the host at start.
/// </summary>
internal sealed class BuddyOptionsValidator(string sectionPath) : IValidateOptions<BuddyOptions>
{
    public ValidateOptionsResult Validate(string? name, BuddyOptions options)
    {
        var failures = new List<string>();
        if (options.Arena is null)
        {
            failures.Add($"{sectionPath}:Arena must not be null.");
        }
        else
        {
            if (!options.Arena.TryValidate(out OptionError? arenaError)) failures.Add(Describe($"{sectionPath}:Arena", arenaError));
            if (options.Reporter is null) failures.Add($"{sectionPath}:Reporter must not be null.");
            else if (!options.Reporter.TryValidate(options.Arena, out OptionError? reporterError))
                failures.Add(Describe($"{sectionPath}:Reporter", reporterError));
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>"Buddy:Arena:Size is 1000: Size must be a positive multiple of ...".</summary>
    internal static string Describe(string prefix, OptionError error)
        => $"{prefix}:{error.Option}{(error.Value is { } value ? $" is {value}" : "")}: {error.Problem}";
}

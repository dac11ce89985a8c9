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
            Check(failures, "Arena", options.Arena.Validate);
            if (options.Reporter is null) failures.Add($"{sectionPath}:Reporter must not be null.");
            else Check(failures, "Reporter", () => options.Reporter.Validate(options.Arena));
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private void Check(List<string> failures, string part, Action validate)
    {
        try
        {
            validate();
        }
        catch (ArgumentException e)
        {
            failures.Add(Describe($"{sectionPath}:{part}", e));
        }
    }

    /// <summary>"Buddy:Arena:Size is 1000: Size must be a positive multiple of ...".</summary>
    internal static string Describe(string prefix, ArgumentException e)
    {
        // ArgumentException appends " (Parameter 'x')" and, out of range, "Actual value was y.": said once, here.
        string message = e.Message;
        int cut = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];
        string value = e is ArgumentOutOfRangeException { ActualValue: { } actual } ? $" is {actual}" : "";
        return $"{prefix}:{e.ParamName}{value}: {message}";
    }
}
